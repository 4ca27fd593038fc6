// The server: worker threads with their own event loops, the listeners they accept on, and the
// one place where shutdown happens.
#pragma once

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "config/options.hpp"
#include "connections/connection_budget.hpp"
#include "connections/site.hpp"
#include "listeners/listener_set.hpp"
#include "log/log_file.hpp"
#include "log/log_stream.hpp"
#include "metrics/metrics.hpp"
#include "server/reloader.hpp"
#include "server/signals.hpp"
#include "server/upgrade.hpp"
#include "server/worker.hpp"

namespace printerfacts {

/// The connections the metrics listeners may hold at once, whatever --max-connections says: a
/// few scrapers and probes, with room to spare, apart from the service's own limit.
inline constexpr std::size_t kMonitoringConnections = 64;

/// Runs the service until SIGTERM or SIGINT, reloading on SIGHUP, then shuts down in a fixed
/// order (run(), docs/architecture.md): answer /healthz with 503 for --shutdown-delay, remove
/// our socket files, stop accepting, close idle connections, let busy ones finish until
/// --shutdown-timeout, close the rest. Signals are read on the thread that calls run(), the
/// control thread; the workers never see them.
/// The event loop that --io-backend asks for and this machine allows. "auto" takes io_uring when
/// a ring can be made, and epoll otherwise, saying why in `why_not`; "io_uring" where it cannot
/// be made throws StartupError (EX_UNAVAILABLE) with the reason and the way out.
IoBackend choose_io_backend(Options::IoBackend wanted, std::string& why_not);

class Server {
 public:
  /// `options`, `health`, `metrics` and `access_log` must outlive the server; the listeners are
  /// owned from here on. `site` serves the first requests, and `reload` makes each later one on
  /// SIGHUP. `metrics` may be null (nothing serves /metrics): then nothing is recorded.
  /// `access_log` is where the workers' access log lines go (null: no access log).
  /// `backend` is the workers' event loop (choose_io_backend).
  /// `invocation` is what SIGUSR2 starts again; `predecessor` is the pipe to tell the process
  /// that started us by an upgrade that we are ready (-1: none). `access_file`, when not null,
  /// is the access log's file, which SIGUSR1 reopens.
  Server(const Options& options, ListenerSet listeners, Metrics* metrics, Health& health,
         std::shared_ptr<const Site> site, Reloader reload, LogStream* access_log,
         IoBackend backend, Invocation invocation = {}, int predecessor = -1,
         LogFile* access_file = nullptr);
  ~Server();

  /// Serves until a termination signal; returns the process exit code (0 after a clean drain).
  int run();

  /// When the shutdown must be over (--shutdown-timeout after it began): what is left of it,
  /// flushing the logs, must end by then too.
  std::chrono::steady_clock::time_point shutdown_deadline() const { return shutdown_deadline_; }

 private:
  // The steps of run(), in order.
  void start_workers();
  void announce_ready();
  int serve_until_terminated();
  void lame_duck(int signal);
  void stop_accepting();
  void finish_in_flight();

  // Reached from the control thread's event loop while serving.
  Task<> dispatch_signals();
  Task<> watchdog();
  Task<> report_status();
  void reload();
  Task<> upgrade();
  Task<> guard_socket_paths();
  Task<> watch_socket_directories(int inotify_fd);
  void watch_socket_directories_once(int inotify_fd) const;
  void check_socket_paths();
  void recreate_socket(std::size_t index);

  const Options& options_;
  Metrics* metrics_;
  Health& health_;
  std::shared_ptr<const Site> site_;
  Reloader reload_;
  LogStream* access_log_;
  IoBackend backend_;  ///< where every worker's access log goes
  ListenerSet listeners_;
  // --max-connections for the service's listeners, counted across every worker; and a reserve
  // of the metrics listeners' own (docs/security.md, "Connection limit").
  ConnectionBudget service_connections_;
  ConnectionBudget monitoring_connections_{kMonitoringConnections};
  UidQuota uid_quota_;  ///< --max-connections-per-uid, for the service's listeners
  std::chrono::steady_clock::time_point shutdown_deadline_ =
      std::chrono::steady_clock::time_point::max();

  // The control thread's event loop and the signals it reads. Blocked from the moment the
  // server exists, before any worker thread starts (they inherit the mask) and before anything
  // says "ready": a supervisor (or a test) may signal the moment it sees readiness, and the
  // default actions kill the process (SIGTERM without removing the socket file).
  boost::asio::io_context control_{1};
  Signals signals_{control_, kServerSignals};
  int termination_signal_ = 0;  ///< the first SIGTERM or SIGINT
  int terminations_ = 0;        ///< how many have come: a second ends the shutdown delay
  /// Why serving ends: a signal, a successor that took a socket path over (the guard saw it),
  /// or a successor an upgrade started that is ready.
  enum class Ending { signal, taken_over, upgraded } ending_ = Ending::signal;

  LogFile* access_file_;
  Invocation invocation_;
  int predecessor_;              ///< the upgrade pipe to say "ready" on, or -1
  bool started_by_upgrade_;      ///< by a predecessor's SIGUSR2 (predecessor_ was given)
  pid_t successor_ = -1;         ///< an upgrade under way: the new process, until it is ready
  std::vector<PathFate> fates_;  ///< by listener: what the guard last found at its path

  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex exit_mutex_;
  std::condition_variable exited_;
  std::size_t running_ = 0;  ///< workers whose event loop still runs; under exit_mutex_
};

}  // namespace printerfacts
