// One worker: an event loop on a thread of its own, accepting on its own duplicate of every
// listening socket and serving each connection it accepts for the connection's whole life.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <latch>
#include <list>
#include <memory>
#include <optional>
#include <thread>
#include <variant>
#include <vector>

#include "config/options.hpp"
#include "connections/connection_budget.hpp"
#include "connections/executor.hpp"
#include "connections/session_context.hpp"
#include "connections/uring.hpp"
#include "listeners/listener_set.hpp"

namespace printerfacts {

template <class Protocol>
struct Acceptor;
struct UringAcceptor;

/// What a worker needs to know of a listener to accept on it.
struct ListenerTraits {
  std::string name;
  bool is_unix = false;
  bool metrics = false;
  bool from_systemd = false;
  bool kept = false;
  static ListenerTraits of(const Listener& l) {
    return {l.name, l.is_unix, l.metrics, l.from_systemd, l.kept};
  }
};

/// Only its own thread touches its sockets and its SessionContext: every request from another
/// thread (a reload, a shutdown step, a watchdog ping) is posted to its event loop, so nothing
/// on the request path takes a lock.
class Worker {
 public:
  /// Duplicates every listener of `listeners` (throws StartupError naming one that fails).
  /// `sink` is where the access log goes (null: no access log); `metrics` may be null. The
  /// connections of the service's listeners count against `service`, those of the metrics
  /// listeners against `monitoring`: limits shared with every other worker.
  /// `backend` is the event loop it runs (io_uring: throws std::system_error when the ring
  /// cannot be made).
  Worker(const Options& options, const ListenerSet& listeners, std::shared_ptr<const Site> site,
         LogStream* sink, WorkerMetrics* metrics, ConnectionBudget& service,
         ConnectionBudget& monitoring, IoBackend backend = IoBackend::epoll,
         UidQuota* uid_quota = nullptr);
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;
  /// Stops the event loop, if still running, and joins the thread.
  ~Worker();

  /// Runs the event loop on a new thread until the acceptors are closed and every connection
  /// has ended; then calls `on_exit` there. The thread inherits the caller's signal mask (the
  /// server's signals blocked: see server/signals.hpp).
  void start(std::function<void()> on_exit);
  void join();

  /// Serves every request that starts from now on with `site`; counts `switched` down once it
  /// does. A request in flight finishes with the site it started with.
  void switch_site(const std::shared_ptr<const Site>& site, std::latch& switched);

  /// The process's workers (this one among them), for load-aware admission: a worker that stops
  /// accepting above its fair share makes the others look again at once. Before start().
  void set_siblings(const std::vector<Worker*>& workers);

  /// Adds one to `alive` from its event loop: a loop that no longer answers adds nothing.
  void ping(std::atomic<std::size_t>& alive);

  /// Shutdown: serves what is queued in our own sockets' backlogs, closes the acceptors, wakes
  /// the idle connections and marks the rest as draining; adds the connections still open to
  /// `open` and counts `stopped` down.
  void stop_accepting(std::atomic<std::size_t>& open, std::latch& stopped);

  /// Past the shutdown deadline: closes every connection.
  void close_all();

  /// Listener `index` has a new socket (its file was deleted and made again): accepts on a
  /// duplicate of it from now on, after serving what the old socket's queue holds.
  void replace_listener(std::size_t index, const Listener& l);

 private:
  /// Runs `f` on the worker's thread, from any thread.
  template <class F>
  void post(F f);
  /// The io_uring loop: what io_.run() is to the epoll one.
  void run_ring();
  /// Accepts on `fd`, a duplicate of listener `index`, from now on.
  void add_acceptor(std::size_t index, const ListenerTraits& l, UniqueFd fd);
  void nudge_siblings(UringAcceptor& a);

  // Made before the io_context and destroyed after it: the connections' coroutines, which the
  // io_context destroys, refer to it.
  std::unique_ptr<Ring> ring_;
  boost::asio::io_context io_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  // epoll only: on the ring, the loop sweeps, and no Asio timer or socket may exist (its epoll
  // reactor would be polled every turn).
  std::optional<boost::asio::steady_timer::rebind_executor<Executor>::other> sweeper_;
  SessionContext ctx_;
  // A list: accept loops hold references to their acceptor, which must never move.
  std::list<
      std::variant<Acceptor<boost::asio::local::stream_protocol>, Acceptor<boost::asio::ip::tcp>>>
      acceptors_;
  std::list<UringAcceptor> ring_acceptors_;
  bool stopped_accepting_ = false;  ///< set on the worker's thread
  bool closing_acceptors_ = false;  ///< shutdown began: no acceptor is added any more
  bool running_ = false;            ///< io_uring: its loop runs (acceptors are armed)
  ConnectionBudget& service_;
  ConnectionBudget& monitoring_;
  UidQuota* uid_quota_;  ///< for the service's listeners (--max-connections-per-uid)
  std::vector<Worker*> siblings_;
  std::thread thread_;
};

}  // namespace printerfacts
