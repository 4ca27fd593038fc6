// The open connections of one worker thread, so shutdown can reach them.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>

#include "util/coarse_clock.hpp"

namespace printerfacts {

/// Tracks the connections of one worker. Not thread-safe: every call happens on the worker's own
/// thread (shutdown steps are posted to it), so the hot path takes no lock.
class ConnectionRegistry {
 public:
  /// How a connection is asked to stop.
  enum class Stop {
    wake,   ///< cancel its pending wait: it answers what has already arrived, then closes
    close,  ///< close its socket now (a deadline passed)
  };

  /// One connection's registration; lives in the connection's coroutine frame and unregisters
  /// itself when the connection ends.
  class Entry {
   public:
    Entry(ConnectionRegistry& registry, std::function<void(Stop)> stop);
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry();

    /// True while the connection waits for the first byte of its next request: closing it then
    /// loses nothing.
    bool idle = false;

    /// The connection's current operation must finish within `d`, or sweep() closes it.
    /// Setting a deadline is a store, not a timer: a per-request timer costs more than the
    /// request itself, and deadlines of seconds need no better than the sweep's precision
    /// (hence the coarse clock too).
    void expires_after(CoarseClock::duration d) { deadline_ = CoarseClock::now() + d; }

   private:
    friend class ConnectionRegistry;
    ConnectionRegistry& registry_;
    std::function<void(Stop)> stop_;
    CoarseClock::time_point deadline_ = CoarseClock::time_point::max();
    Entry* prev_ = nullptr;
    Entry* next_ = nullptr;
  };

  /// Begins a graceful shutdown: idle connections are woken to close, busy ones finish their
  /// request and then close (draining() tells them to).
  void drain();

  /// Closes every connection, busy or not (the shutdown deadline has passed).
  void close_all();

  /// Closes every connection whose deadline has passed. Called periodically by the worker.
  void sweep(CoarseClock::time_point now);

  /// Called once the registry is draining and empty, so the worker can stop its sweeper.
  void on_drained(std::function<void()> callback) { on_drained_ = std::move(callback); }

  bool draining() const { return draining_; }
  std::size_t size() const { return size_; }

 private:
  template <class Predicate>
  void stop_where(Predicate p, Stop how);

  Entry* head_ = nullptr;
  std::size_t size_ = 0;
  bool draining_ = false;
  std::function<void()> on_drained_;
};

}  // namespace printerfacts
