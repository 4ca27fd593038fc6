#include "server/worker.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <cstring>
#include <functional>

#include "connections/admission.hpp"
#include "connections/nonblocking_accept.hpp"
#include "connections/reactor_hints.hpp"
#include "connections/uring_socket.hpp"
#include "log/diagnostics.hpp"
#include "util/journal.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

namespace asio = boost::asio;
using unix_stream = asio::local::stream_protocol;
using tcp = asio::ip::tcp;
using Timer = asio::steady_timer::rebind_executor<Executor>::other;

AccessLog::Style access_log_style(const Options& options) {
  AccessLog::Style style;
  style.format = options.access_log_format.value_or(options.log_format == Options::LogFormat::json
                                                        ? AccessLogFormat::json
                                                        : AccessLogFormat::text);
  // A file is stamped here; the journal stamps lines itself.
  style.timestamps = options.access_log_file || !stream_is_journal(STDOUT_FILENO);
  return style;
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

/// One worker's duplicate of one listening socket, and its door.
template <class Protocol>
struct Acceptor {
  typename Protocol::acceptor::template rebind_executor<Executor>::other socket;
  Protocol protocol;  ///< of the connections it accepts
  Admission admission;
  bool take_backlog;  ///< at shutdown, serve what is already queued (false: leave it to systemd)
  ThrottledWarning accept_failed;
  /// Registered level-triggered and exclusive (exclusive_listener): each accept waits for epoll.
  bool exclusive = false;
  std::size_t listener = 0;  ///< the index of its listener in the ListenerSet
  bool finished = false;     ///< its accept loop has ended: it may be erased

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
        if (!ec) admission.admit<Protocol>(std::move(s), ctx);
      }
    }
    socket.close(ec);
  }
};

/// One worker's duplicate of one listening socket on the ring.
struct UringAcceptor : UringOp {
  UringAcceptor(Ring& r, Executor e, SessionContext& c, int descriptor, Admission a, bool backlog,
                bool unix)
      : ring(r),
        executor(e),
        ctx(c),
        fd(descriptor),
        admission(a),
        take_backlog(backlog),
        is_unix(unix) {
    complete = [](UringOp* op, int result, unsigned flags) {
      static_cast<UringAcceptor*>(op)->accepted(result, flags);
    };
    backoff.self = this;
    backoff.complete = [](UringOp* op, int, unsigned) {
      UringAcceptor& self = *static_cast<Backoff*>(op)->self;
      self.backing_off = false;
      self.rearm_or_close();
    };
  }

  Ring& ring;
  Executor executor;
  SessionContext& ctx;
  int fd;
  std::size_t listener = 0;  ///< the index of its listener in the ListenerSet
  Admission admission;
  bool take_backlog;
  bool is_unix;
  ThrottledWarning accept_failed;
  bool armed = false;   ///< an accept is in the kernel
  bool paused = false;  ///< above the fair share: no accept until back (resume_if_fair)
  std::function<void()> nudge_others;  ///< makes every other worker take a loop turn
  bool backing_off = false;
  bool stopping = false;
  struct Backoff : UringOp {
    UringAcceptor* self = nullptr;
  } backoff;
  __kernel_timespec backoff_time{.tv_sec = 0, .tv_nsec = 50'000'000};

  bool closed() const { return fd < 0; }
  /// Closed, and nothing of it is left in the kernel: it may be erased.
  bool finished() const { return fd < 0 && !armed && !backing_off; }

  // One accept at a time, made again after each connection, not a multishot accept: that one
  // takes every connection queued when it wakes, so the worker awake took a whole burst (128 of
  // 128, measured). With one each, a burst is spread over the workers waiting (the kernel arms an
  // accept's wait exclusively: one worker wakes per connection), and a worker above its fair
  // share does not make the next one (paused) until it is back.
  void arm() {
    io_uring_sqe* s = ring.sqe();
    io_uring_prep_accept(s, fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data(s, static_cast<UringOp*>(this));
    armed = true;
    paused = false;
  }

  /// Called every loop turn: a paused acceptor accepts again once its worker is back near the
  /// mean (connections ended here, or opened elsewhere).
  void resume_if_fair() {
    if (paused && !stopping && !armed && !backing_off && !above_fair_share()) arm();
  }

  bool above_fair_share() const { return admission.above_fair_share(ctx); }

  void admit(int connection) {
    UringSocket s(ring, executor, connection, ctx.options.send_timeout);
    if (is_unix) {
      admission.admit<unix_stream>(std::move(s), ctx);
    } else {
      admission.admit<tcp>(std::move(s), ctx);
    }
  }

  void accepted(int result, unsigned) {
    armed = false;
    if (result >= 0) {
      // Even when stopping: accepted before the cancellation, and its client may have sent a
      // request already.
      admit(result);
    } else if (result != -ECANCELED && result != -EAGAIN && result != -EINTR) {
      // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS): the connection stays in the
      // backlog; accepting again at once would spin, so pause briefly and warn once a second.
      accept_failed.warn("accept failed: {}; retrying in 50ms", std::strerror(-result));
      if (!armed && !stopping) {
        io_uring_sqe* s = ring.sqe();
        io_uring_prep_timeout(s, &backoff_time, 0, 0);
        io_uring_sqe_set_data(s, static_cast<UringOp*>(&backoff));
        backing_off = true;
      }
    }
    rearm_or_close();
  }

  void rearm_or_close() {
    if (armed || backing_off) return;
    if (!stopping) {
      if (!above_fair_share()) {
        arm();
      } else if (!paused) {
        paused = true;
        // The others look again now, not at their next tick: one of them is below the mean
        // and must be accepting (otherwise every worker could be paused at once).
        if (nudge_others) nudge_others();
      }
    } else if (fd >= 0) {
      ::close(fd);
      fd = -1;
    }
  }

  // Shutdown, as Acceptor::stop: what is queued in a socket we created is served; a systemd
  // socket's queue stays with systemd. The descriptor is closed once the kernel has let go of
  // the accept.
  void stop() {
    stopping = true;
    if (armed) ring.cancel(*this);
    if (backing_off) ring.cancel(backoff);
    if (take_backlog) {
      // Non-blocking, as the epoll acceptor makes it: accept until the queue is empty.
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      for (int i = 0; i < 65536; ++i) {
        const int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) break;
        admit(c);
      }
    }
    rearm_or_close();
  }
};

namespace {

template <class Protocol>
Task<> accept_loop(Acceptor<Protocol>& a, SessionContext& ctx) {
  Timer backoff(a.socket.get_executor());
  struct Finished {
    bool& flag;
    ~Finished() { flag = true; }
  } finished{a.finished};
  for (;;) {
    auto [ec, fd] = co_await async_accept_nonblocking(a.socket, use_tuple);
    Socket<Protocol> socket(a.socket.get_executor());
    // Registered with the worker's epoll; fails only for want of kernel memory, and is then
    // treated as a failed accept (the connection is closed unread).
    if (!ec) {
      socket.assign(a.protocol, fd, ec);
      if (ec) ::close(fd);
    }
    if (!ec) {
      note_non_blocking(socket);
      if (a.exclusive) accepted_one(a.socket);
      // Even when shutdown closed the acceptor meanwhile: the connection was accepted before
      // that, and dropping it unread would reset a client that may have sent its request.
      a.admission.template admit<Protocol>(std::move(socket), ctx);
      if (a.exclusive && a.admission.above_fair_share(ctx)) {
        // Well above the mean: out of the listener's epoll set, so that the kernel wakes
        // another worker for the next connections, until this one is back near the mean.
        exclusive_listener(a.socket, a.socket.get_executor().context(), false);
        while (a.socket.is_open() && a.admission.above_fair_share(ctx)) {
          backoff.expires_after(std::chrono::milliseconds(10));
          co_await backoff.async_wait(use_tuple);
        }
        if (!a.socket.is_open()) co_return;
        a.exclusive = exclusive_listener(a.socket, a.socket.get_executor().context(), true);
      }
      continue;
    }
    if (!a.socket.is_open() || ec == asio::error::operation_aborted) co_return;
    // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS): the connection stays in the
    // backlog. Retrying at once would spin a core, so pause briefly and warn once a second.
    a.accept_failed.warn("accept failed: {}; retrying in 50ms", ec.message());
    // Level-triggered, the queued connection would wake this worker at once, all the pause long.
    if (a.exclusive) exclusive_listener(a.socket, a.socket.get_executor().context(), false);
    backoff.expires_after(std::chrono::milliseconds(50));
    co_await backoff.async_wait(use_tuple);
    if (a.exclusive && a.socket.is_open()) {
      // Refused (no memory for the registration): Asio's edge-triggered one is back instead.
      a.exclusive = exclusive_listener(a.socket, a.socket.get_executor().context(), true);
    }
  }
}

// The protocol a listening descriptor speaks, for Asio's acceptor.
tcp tcp_protocol_of(int fd, const std::string& name) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    throw errno_error("getsockname() of listener " + name, errno);
  return ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4();
}

}  // namespace

Worker::Worker(const Options& options, const ListenerSet& listeners,
               std::shared_ptr<const Site> site, LogStream* sink, WorkerMetrics* metrics,
               ConnectionBudget& service, ConnectionBudget& monitoring, IoBackend backend,
               UidQuota* uid_quota)
    : ring_(backend == IoBackend::io_uring ? std::make_unique<Ring>() : nullptr),
      ctx_{.options = options,
           .site = worker_local(std::move(site)),
           .rng = Random::from_entropy(),
           .access_log = std::nullopt,
           .registry = {},
           .date = {},
           .metrics = metrics,
           .blocks = {},
           .proxy_refused = {}},
      service_(service),
      monitoring_(monitoring),
      uid_quota_(uid_quota) {
  if (sink) ctx_.access_log.emplace(*sink, io_.get_executor(), access_log_style(options));
  if (!ring_) {
    sweeper_.emplace(io_);
    ctx_.registry.on_drained([this] { sweeper_->cancel(); });
    asio::co_spawn(io_, sweep_loop(*sweeper_, ctx_.registry, sweep_tick(options)),
                   log_connection_failure);
  }
  // Every worker accepts on its own duplicate of each listening socket, in its own event loop:
  // no connection is handed between threads and no lock is shared on the hot path.
  std::size_t index = 0;
  for (const auto& l : listeners.listeners()) {
    UniqueFd fd(::dup(l.fd.get()));
    if (!fd.valid()) throw errno_error("dup() of listener " + l.name, errno);
    add_acceptor(index++, ListenerTraits::of(l), std::move(fd));
  }
}

void Worker::add_acceptor(std::size_t index, const ListenerTraits& l, UniqueFd fd) {
  const Admission admission(index, l.metrics, l.metrics ? monitoring_ : service_,
                            worker_threads(ctx_.options), l.metrics ? nullptr : uid_quota_);
  // Queued connections of a socket we created are served at shutdown; those of a systemd
  // socket, or of one kept in its fd store, wait there for our successor.
  const bool take_backlog = !l.from_systemd && !l.kept;
  if (ring_) {
    auto& a = ring_acceptors_.emplace_back(*ring_, io_.get_executor(), ctx_, fd.release(),
                                           admission, take_backlog, l.is_unix);
    a.listener = index;
    if (!siblings_.empty()) nudge_siblings(a);
    if (running_) a.arm();  // at start, run_ring() arms every acceptor
  } else if (l.is_unix) {
    auto& a = std::get<Acceptor<unix_stream>>(acceptors_.emplace_back(
        std::in_place_type<Acceptor<unix_stream>>,
        Acceptor<unix_stream>{
            {io_, unix_stream(), fd.release()}, unix_stream(), admission, take_backlog, {}}));
    a.listener = index;
    a.exclusive = exclusive_listener(a.socket, io_);
    asio::co_spawn(io_, accept_loop(a, ctx_), log_connection_failure);
  } else {
    const tcp protocol = tcp_protocol_of(fd.get(), l.name);
    auto& a = std::get<Acceptor<tcp>>(acceptors_.emplace_back(
        std::in_place_type<Acceptor<tcp>>,
        Acceptor<tcp>{{io_, protocol, fd.release()}, protocol, admission, take_backlog, {}}));
    a.listener = index;
    a.exclusive = exclusive_listener(a.socket, io_);
    asio::co_spawn(io_, accept_loop(a, ctx_), log_connection_failure);
  }
}

void Worker::replace_listener(std::size_t index, const Listener& l) {
  UniqueFd fd(::dup(l.fd.get()));
  if (!fd.valid()) throw errno_error("dup() of listener " + l.name, errno);
  post([this, index, traits = ListenerTraits::of(l),
        fd = std::make_shared<UniqueFd>(std::move(fd))]() mutable {
    // The old socket first: what its queue holds was sent by clients that found it by path
    // before it went, and is served (as at shutdown); then it is closed.
    for (auto& a : acceptors_) {
      std::visit(
          [&](auto& acceptor) {
            if (acceptor.listener == index) acceptor.stop(ctx_);
          },
          a);
    }
    for (auto& a : ring_acceptors_) {
      if (a.listener == index && !a.stopping) a.stop();
    }
    acceptors_.remove_if(
        [](const auto& a) { return std::visit([](const auto& x) { return x.finished; }, a); });
    ring_acceptors_.remove_if([](const UringAcceptor& a) { return a.finished(); });
    if (!closing_acceptors_) add_acceptor(index, traits, std::move(*fd));
  });
}

Worker::~Worker() {
  io_.stop();
  if (ring_) ring_->wake();
  join();
  // Connections still open (a worker stopped without draining): the kernel lets go of their
  // buffers before the io_context destroys the coroutines that hold them.
  if (ring_) ring_->close();
  for (auto& a : ring_acceptors_) {
    if (a.fd >= 0) ::close(a.fd);
  }
}

template <class F>
void Worker::post(F f) {
  asio::post(io_, std::move(f));
  if (ring_) ring_->wake();
}

// The loop of the io_uring backend. Each turn: run every coroutine step that is ready (which
// queues receives, sends and closes in the ring), enforce deadlines when the sweep is due, then
// submit everything and wait for completions in one system call, and dispatch them inside the
// io_context. It ends as io_.run() does on the epoll backend: once the acceptors are closed
// and every connection has ended.
void Worker::run_ring() {
  ring_->enable();
  for (auto& a : ring_acceptors_) a.arm();
  running_ = true;
  const auto tick = sweep_tick(ctx_.options);
  auto next_sweep = CoarseClock::now() + tick;
  auto work = asio::make_work_guard(io_);
  for (;;) {
    while (io_.poll() > 0) {
    }
    if (io_.stopped()) return;
    const auto now = CoarseClock::now();
    if (now >= next_sweep) {
      ctx_.registry.sweep(now);
      ring_->sweep_orphans(now);
      next_sweep = now + tick;
    }
    for (auto& a : ring_acceptors_) a.resume_if_fair();
    if (stopped_accepting_ && ctx_.registry.size() == 0 && ring_->connections() == 0 &&
        std::all_of(ring_acceptors_.begin(), ring_acceptors_.end(),
                    [](const UringAcceptor& a) { return a.closed(); })) {
      ring_->close();  // submits the last closes
      return;
    }
    if (ring_->submit_and_wait(next_sweep - now)) {
      // A whole tick with nothing to do: give the CPU away once (a system call a second at
      // most, and only when idle). Valgrind 3.19 keeps its thread lock through io_uring_enter,
      // so without this its other threads (the signal handling one) would starve under it.
      ::sched_yield();
      continue;
    }
    asio::post(io_, [this] { ring_->dispatch(); });
  }
}

void Worker::start(std::function<void()> on_exit) {
  thread_ = std::thread([this, on_exit = std::move(on_exit)] {
    // Both return once acceptors are closed and every connection has ended.
    if (ring_) {
      run_ring();
    } else {
      io_.run();
    }
    if (ctx_.access_log) ctx_.access_log->flush();
    on_exit();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::switch_site(const std::shared_ptr<const Site>& site, std::latch& switched) {
  post([this, local = worker_local(site), &switched]() mutable {
    ctx_.site = std::move(local);
    switched.count_down();
  });
}

void Worker::set_siblings(const std::vector<Worker*>& workers) {
  siblings_ = workers;
  for (auto& a : ring_acceptors_) nudge_siblings(a);
}

void Worker::nudge_siblings(UringAcceptor& a) {
  a.nudge_others = [workers = siblings_, this] {
    for (Worker* w : workers) {
      // A loop turn is all it takes: each turn looks at its paused acceptors.
      if (w != this && w->ring_) w->ring_->wake();
    }
  };
}

void Worker::ping(std::atomic<std::size_t>& alive) {
  post([&alive] { ++alive; });
}

void Worker::stop_accepting(std::atomic<std::size_t>& open, std::latch& stopped) {
  post([this, &open, &stopped] {
    closing_acceptors_ = true;
    for (auto& a : acceptors_) {
      std::visit([this](auto& acceptor) { acceptor.stop(ctx_); }, a);
    }
    for (auto& a : ring_acceptors_) a.stop();
    // Posted, so it runs after the sessions just spawned for queued connections have started
    // and registered: drain() must see them.
    asio::post(io_, [this, &open, &stopped] {
      ctx_.registry.drain();
      stopped_accepting_ = true;
      open += ctx_.registry.size();
      stopped.count_down();
    });
  });
}

void Worker::close_all() {
  post([this] {
    ctx_.registry.close_all();
    if (ring_) ring_->sweep_orphans(CoarseClock::now(), true);
  });
}

}  // namespace printerfacts
