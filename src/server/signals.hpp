// The signals the server acts on (SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2), read from a signalfd
// on the control thread's event loop instead of caught by a handler.
#pragma once

#include <signal.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <span>

#include "connections/executor.hpp"

namespace printerfacts {

/// The signals the server acts on: SIGTERM and SIGINT stop it, SIGHUP reloads, SIGUSR1 reopens
/// the access log file, SIGUSR2 upgrades it in place (server/upgrade.hpp).
inline constexpr std::array<int, 5> kServerSignals = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};

/// Blocks kServerSignals in the calling thread (and every thread it creates), as early in
/// start-up as serving is decided: one sent while the content loads and the sockets open waits,
/// pending, for the control loop (a clean shutdown), where its default action would kill the
/// process. Throws StartupError.
void block_server_signals();

/// Blocks `signals` in the calling thread, and so in every thread it creates afterwards, and
/// makes them readable from a signalfd. No handler ever runs: a signal sent at any moment (even
/// the moment READY=1 is out) waits in the kernel, pending, until the control loop reads it.
/// A handler would run on whichever thread the kernel picks, interrupting its system calls, and
/// ThreadSanitizer defers handlers in ways that lost one in tens of starts under load.
/// Construct it on the main thread before any other thread starts.
class Signals {
 public:
  /// Throws StartupError naming the call that failed.
  Signals(boost::asio::io_context& io, std::span<const int> signals);
  Signals(const Signals&) = delete;
  Signals& operator=(const Signals&) = delete;

  /// The next signal: the number, or 0 when the wait was cancelled or failed.
  Task<int> next();

 private:
  boost::asio::posix::basic_stream_descriptor<Executor> descriptor_;  ///< the signalfd
};

}  // namespace printerfacts
