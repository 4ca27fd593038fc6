#include "server/server.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <functional>
#include <latch>
#include <list>
#include <mutex>
#include <thread>
#include <variant>

#include "connections/peer.hpp"
#include "connections/session.hpp"
#include "listeners/systemd.hpp"
#include "log/diagnostics.hpp"
#include "util/journal.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

namespace asio = boost::asio;
using unix_stream = asio::local::stream_protocol;
using tcp = asio::ip::tcp;
using session_detail::Executor;
using session_detail::Socket;
using session_detail::Task;
using session_detail::use_tuple;
using Timer = asio::steady_timer::rebind_executor<Executor>::other;
template <class Protocol>
using AcceptorSocket = typename Protocol::acceptor::template rebind_executor<Executor>::other;

AccessLog::Style access_log_style(const Options& options) {
  AccessLog::Style style;
  style.json = options.log_format == Options::LogFormat::json;
  style.timestamps = !stream_is_journal(STDOUT_FILENO);
  return style;
}

// Reports a connection coroutine that ended with an exception (only resource exhaustion can
// cause one); the process goes on serving everyone else.
void log_failure(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("connection failed: {}", ex.what());
  }
}

/// One worker's duplicate of one listening socket, with what its connections need.
template <class Protocol>
struct Acceptor {
  AcceptorSocket<Protocol> socket;
  bool metrics_listener;  ///< serves only /metrics and /healthz
  std::size_t listener;   ///< index into the server's listeners, for metrics
  bool take_backlog;  ///< at shutdown, serve what is already queued (false: leave it to systemd)
  std::chrono::steady_clock::time_point last_warning{};

  // Starts serving one freshly accepted connection, or turns it away.
  void admit(Socket<Protocol> s, SessionContext& ctx) {
    if constexpr (std::is_same_v<Protocol, tcp>) {
      boost::system::error_code ignored;
      s.set_option(tcp::no_delay(true), ignored);
    } else {
      if (!ctx.site->peers.allows(s.native_handle())) {
        spdlog::warn("refused {}: peer credentials not allowed", describe_peer(s.native_handle()));
        if (ctx.metrics) ctx.metrics->rejected[listener].add();
        return;  // the socket closes as it goes out of scope, unread
      }
    }
    // Over the connection limit (shared out evenly between workers): turn the newcomer away at
    // once rather than let descriptors and memory run out for everyone.
    if (ctx.registry.size() >= ctx.connection_limit) {
      warn_at_most_every_second("connection limit ({}) reached; closing new connections",
                                ctx.options.max_connections);
      return;
    }
    if (ctx.metrics) ctx.metrics->accepted[listener].add();
    std::string peer = describe_peer(s.native_handle());
    asio::co_spawn(
        socket.get_executor(),
        run_session<Protocol>(std::move(s), std::move(peer), ctx, metrics_listener, listener),
        log_failure);
  }

  // Shutdown: stop accepting. Connections already queued in a socket we created would be reset
  // when it closes, though their clients may have sent a request already; once the file is gone
  // no new one can arrive by path, so they are accepted now and each is answered what it has
  // sent (a draining session serves what has arrived, then closes). A systemd socket's queue
  // is left alone: it stays with systemd for our successor.
  void stop(SessionContext& ctx) {
    boost::system::error_code ec;
    if (take_backlog && socket.is_open()) {
      socket.non_blocking(true, ec);
      for (int i = 0; i < 65536 && !ec; ++i) {
        Socket<Protocol> s(socket.get_executor());
        socket.accept(s, ec);
        if (!ec) admit(std::move(s), ctx);
      }
    }
    socket.close(ec);
  }

  template <class... Args>
  void warn_at_most_every_second(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_warning < std::chrono::seconds(1)) return;
    last_warning = now;
    spdlog::warn(fmt, std::forward<Args>(args)...);
  }
};

template <class Protocol>
Task<> accept_loop(Acceptor<Protocol>& a, SessionContext& ctx) {
  Timer backoff(a.socket.get_executor());
  for (;;) {
    auto [ec, socket] = co_await a.socket.async_accept(use_tuple);
    if (!ec) {
      // Even when shutdown closed the acceptor meanwhile: the connection was accepted before
      // that, and dropping it unread would reset a client that may have sent its request.
      a.admit(std::move(socket), ctx);
      continue;
    }
    if (!a.socket.is_open() || ec == asio::error::operation_aborted) co_return;
    // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS): the connection stays in the
    // backlog. Retrying at once would spin a core, so pause briefly and warn once a second.
    a.warn_at_most_every_second("accept failed: {}; retrying in 50ms", ec.message());
    backoff.expires_after(std::chrono::milliseconds(50));
    co_await backoff.async_wait(use_tuple);
  }
}

// Enforces every connection's deadline (ConnectionRegistry::sweep) a few times per shortest
// timeout, until shutdown has drained the worker.
Task<> sweep_loop(Timer& timer, ConnectionRegistry& registry,
                  std::chrono::steady_clock::duration tick) {
  for (;;) {
    timer.expires_after(tick);
    co_await timer.async_wait(use_tuple);
    if (registry.draining() && registry.size() == 0) co_return;
    registry.sweep(CoarseClock::now());
  }
}

std::chrono::steady_clock::duration sweep_tick(const Options& o) {
  const auto shortest = std::min({o.header_timeout, o.idle_timeout, o.send_timeout});
  return std::clamp<std::chrono::steady_clock::duration>(
      shortest / 4, std::chrono::milliseconds(10), std::chrono::seconds(1));
}

}  // namespace

struct Server::Worker {
  Worker(const Options& options, std::shared_ptr<const Site> site, AccessLogSink* sink,
         WorkerMetrics* metrics)
      : ctx{.options = options,
            .site = worker_local(std::move(site)),
            .rng = Random::from_entropy(),
            .access_log = std::nullopt,
            .registry = {},
            .date = {},
            .metrics = metrics,
            // This worker's share of --max-connections, rounded up.
            .connection_limit =
                (options.max_connections + worker_threads(options) - 1) / worker_threads(options),
            .blocks = {}} {
    if (sink) ctx.access_log.emplace(*sink, io.get_executor(), access_log_style(options));
    ctx.registry.on_drained([this] { sweeper.cancel(); });
    asio::co_spawn(io, sweep_loop(sweeper, ctx.registry, sweep_tick(options)), log_failure);
  }

  // One thread runs this context, and only that thread touches its sockets (shutdown steps are
  // posted to it), so socket operations need no lock; posting from other threads still takes
  // the scheduler's.
  asio::io_context io{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  Timer sweeper{io};
  SessionContext ctx;
  // A list: accept loops hold references to their acceptor, which must never move.
  std::list<std::variant<Acceptor<unix_stream>, Acceptor<tcp>>> acceptors;
  std::thread thread;
};

Server::Server(const Options& options, ListenerSet listeners, Metrics* metrics, Health& health,
               std::shared_ptr<const Site> site, Reloader reload)
    : options_(options),
      metrics_(metrics),
      health_(health),
      site_(std::move(site)),
      reload_(std::move(reload)),
      listeners_(std::move(listeners)) {}

Server::~Server() {
  for (auto& w : workers_) {
    w->io.stop();
    if (w->thread.joinable()) w->thread.join();
  }
}

void Server::start_workers() {
  for (unsigned i = 0, n = worker_threads(options_); i < n; ++i) {
    auto w =
        std::make_unique<Worker>(options_, site_, options_.access_log ? &stdout_sink_ : nullptr,
                                 metrics_ ? &metrics_->worker(i) : nullptr);
    std::size_t index = 0;
    // Every worker accepts on its own duplicate of each listening socket, in its own event loop:
    // no connection is handed between threads and no lock is shared on the hot path.
    for (const auto& l : listeners_.listeners()) {
      const std::size_t listener = index++;
      const int fd = ::dup(l.fd);
      if (fd < 0) throw StartupError(errno_message("dup() of listener " + l.name, errno));
      // Queued connections of a socket we created are served at shutdown; those of a
      // systemd socket wait there for our successor.
      const bool take_backlog = !l.from_systemd;
      if (l.is_unix) {
        auto& a = std::get<Acceptor<unix_stream>>(
            w->acceptors.emplace_back(std::in_place_type<Acceptor<unix_stream>>,
                                      AcceptorSocket<unix_stream>(w->io, unix_stream(), fd),
                                      l.metrics, listener, take_backlog));
        asio::co_spawn(w->io, accept_loop(a, w->ctx), log_failure);
      } else {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
          const int err = errno;
          ::close(fd);
          throw StartupError(errno_message("getsockname() of listener " + l.name, err));
        }
        auto& a = std::get<Acceptor<tcp>>(w->acceptors.emplace_back(
            std::in_place_type<Acceptor<tcp>>,
            AcceptorSocket<tcp>(w->io, ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd),
            l.metrics, listener, take_backlog));
        asio::co_spawn(w->io, accept_loop(a, w->ctx), log_failure);
      }
    }
    workers_.push_back(std::move(w));
  }
}

void Server::reload() {
  systemd::notify("RELOADING=1");
  spdlog::info("received SIGHUP, reloading");
  try {
    // All or nothing: the reloader reads and checks everything before anything changes.
    Reloaded reloaded = reload_();
    site_ = reloaded.site;
    // Each worker switches between two requests; a request in flight finishes with the site it
    // started with, which lives until the last such request is answered. "reloaded" and READY=1
    // are said only once every worker has switched: from then on every new request sees it.
    std::latch switched(static_cast<std::ptrdiff_t>(workers_.size()));
    for (auto& w : workers_) {
      asio::post(w->io, [worker = w.get(), local = worker_local(site_), &switched]() mutable {
        worker->ctx.site = std::move(local);
        switched.count_down();
      });
    }
    switched.wait();
    // Said at the old level, so that leaving "info" still shows that the reload took effect.
    spdlog::info("reloaded: {}", reloaded.summary);
    set_log_level(reloaded.log_level);
    if (metrics_) metrics_->reload_finished(true);
  } catch (const std::exception& e) {
    spdlog::error("reload failed; still serving the previous configuration: {}", e.what());
    if (metrics_) metrics_->reload_finished(false);
  }
  systemd::notify("READY=1");
}

int Server::run() {
  // Catch termination signals and SIGHUP before anything says "ready": a supervisor (or a test)
  // may send one the moment it sees readiness, and the default actions kill the process (SIGTERM
  // without removing the socket file). They are handled on this thread; workers never see them.
  asio::io_context control{1};
  asio::signal_set terminate(control, SIGTERM, SIGINT);
  asio::signal_set hangup(control, SIGHUP);
  int received = 0;
  terminate.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) received = sig;
    control.stop();
  });
  std::function<void()> await_hangup = [&] {
    hangup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      reload();
      await_hangup();
    });
  };
  await_hangup();

  start_workers();
  // Workers start with these signals blocked, so the kernel always delivers them to this
  // thread, never interrupting a worker's system calls (and never deferred behind one, as
  // sanitizers do); a signal that arrives meanwhile waits, pending, for the unblock below.
  sigset_t handled;
  sigemptyset(&handled);
  for (const int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&handled, sig);
  sigset_t previous;
  ::pthread_sigmask(SIG_BLOCK, &handled, &previous);
  std::mutex done_mutex;
  std::condition_variable done_cv;
  std::size_t running = workers_.size();
  for (auto& w : workers_) {
    w->thread = std::thread([&, worker = w.get()] {
      worker->io.run();  // returns once acceptors are closed and every connection has ended
      if (worker->ctx.access_log) worker->ctx.access_log->flush();
      std::lock_guard lock(done_mutex);
      --running;
      done_cv.notify_all();
    });
  }
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);

  for (const auto& l : listeners_.listeners()) {
    spdlog::info("listening on {}{}{}", l.name, l.metrics ? " (metrics only)" : "",
                 l.from_systemd ? " (from systemd)" : "");
  }
  spdlog::info("printerfacts {} ready with {} thread(s)", PRINTERFACTS_VERSION, workers_.size());
  systemd::notify("READY=1");

  // systemd's watchdog (WatchdogSec=): ping at half the interval, but only while every worker's
  // event loop still answers, so a wedged worker gets the service restarted.
  asio::steady_timer watchdog(control);
  std::atomic<std::size_t> alive{workers_.size()};
  const auto interval = systemd::watchdog_interval();
  std::function<void()> arm = [&] {
    watchdog.expires_after(interval / 2);
    watchdog.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      if (alive.exchange(0) == workers_.size()) systemd::notify("WATCHDOG=1");
      for (auto& w : workers_) asio::post(w->io, [&] { ++alive; });
      arm();
    });
  };
  if (interval.count() > 0) {
    spdlog::info("systemd watchdog every {}ms", interval.count() / 2000);
    arm();
  }
  control.run();

  const char* signal_name = received == SIGINT ? "SIGINT" : "SIGTERM";
  systemd::notify("STOPPING=1");
  // 0. Lame duck: everything is still served, but /healthz says 503, so that whatever routes
  //    traffic here (a Kubernetes Service, a load balancer's health check) stops before the
  //    listeners close. Kubernetes removes a pod from its endpoints only after it sent SIGTERM.
  //    A second signal ends the delay early; the watchdog and reloads go on meanwhile.
  if (options_.shutdown_delay > Duration::zero()) {
    health_.leave();
    spdlog::info("received {}; serving {} more with /healthz answering 503", signal_name,
                 format_duration(options_.shutdown_delay));
    control.restart();
    asio::steady_timer delay(control, options_.shutdown_delay);
    delay.async_wait([&](const boost::system::error_code&) { control.stop(); });
    terminate.async_wait([&](const boost::system::error_code& ec, int) {
      if (!ec) spdlog::info("second signal: ending the shutdown delay early");
      control.stop();
    });
    control.run();
  }
  spdlog::info("{}, shutting down (deadline {})",
               options_.shutdown_delay > Duration::zero() ? "shutdown delay over"
                                                          : fmt::format("received {}", signal_name),
               format_duration(options_.shutdown_timeout));
  // 1. Remove the socket files we created (only if they are still ours): from now on no new
  //    client finds us by path, and the backlogs can only shrink.
  listeners_.remove_files();
  // 2. Stop accepting, in each worker's own thread: serve what is queued in our own sockets'
  //    backlogs, then close them; wake the connections waiting idle, so they close.
  std::latch stopped(static_cast<std::ptrdiff_t>(workers_.size()));
  std::atomic<std::size_t> open_connections{0};
  for (auto& w : workers_) {
    asio::post(w->io, [&, worker = w.get()] {
      for (auto& a : worker->acceptors) {
        std::visit([&](auto& acceptor) { acceptor.stop(worker->ctx); }, a);
      }
      // Posted, so it runs after the sessions just spawned for queued connections have started
      // and registered: drain() must see them.
      asio::post(worker->io, [&, worker] {
        worker->ctx.registry.drain();
        open_connections += worker->ctx.registry.size();
        stopped.count_down();
      });
    });
  }
  stopped.wait();
  spdlog::info("stopped accepting; draining {} connection(s)", open_connections.load());
  // 3. Close our descriptors of the listening sockets. With socket activation the socket stays
  //    with systemd, queued connections wait for our successor, and nothing is lost.
  listeners_.close();

  // 4. Let requests in flight finish, up to the deadline.
  {
    std::unique_lock lock(done_mutex);
    if (!done_cv.wait_for(lock, options_.shutdown_timeout, [&] { return running == 0; })) {
      spdlog::warn("shutdown deadline passed; closing the remaining connections");
      for (auto& w : workers_) {
        asio::post(w->io, [worker = w.get()] { worker->ctx.registry.close_all(); });
      }
    }
  }
  for (auto& w : workers_) w->thread.join();
  workers_.clear();
  spdlog::info("stopped");
  return 0;
}

}  // namespace printerfacts
