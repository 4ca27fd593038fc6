#include "server/server.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <latch>

#include "connections/admission.hpp"
#include "listeners/systemd.hpp"
#include "log/diagnostics.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

namespace asio = boost::asio;
using Timer = asio::steady_timer::rebind_executor<Executor>::other;

}  // namespace

IoBackend choose_io_backend(Options::IoBackend wanted, std::string& why_not) {
  why_not.clear();
  if (wanted == Options::IoBackend::epoll) return IoBackend::epoll;
  why_not = Ring::unavailable_reason();
  if (why_not.empty()) return IoBackend::io_uring;
  if (wanted == Options::IoBackend::io_uring) {
    throw StartupError("--io-backend io_uring: " + why_not +
                           "; use --io-backend auto (io_uring where possible) or epoll",
                       exit_code::unavailable);
  }
  return IoBackend::epoll;
}

Server::Server(const Options& options, ListenerSet listeners, Metrics* metrics, Health& health,
               std::shared_ptr<const Site> site, Reloader reload, LogStream* access_log,
               IoBackend backend)
    : options_(options),
      metrics_(metrics),
      health_(health),
      site_(std::move(site)),
      reload_(std::move(reload)),
      access_log_(access_log),
      backend_(backend),
      listeners_(std::move(listeners)),
      service_connections_(options.max_connections) {}

Server::~Server() = default;  // each Worker stops its loop and joins its thread

int Server::run() {
  // 0. The signals are blocked and read from a signalfd already (the member signals_).
  // 1. Workers accept and serve; SIGHUP reloads from here on.
  start_workers();
  asio::co_spawn(control_, dispatch_signals(), log_connection_failure);
  // 2. Ready: systemd and the log are told, the watchdog starts.
  announce_ready();
  // 3. Serve until SIGTERM or SIGINT.
  const int signal = serve_until_terminated();
  // 4. Lame duck: /healthz says 503 for --shutdown-delay, everything else is still served.
  lame_duck(signal);
  // 5. Remove the socket files we created (only if they are still ours): from now on no new
  //    client finds us by path, and the backlogs can only shrink.
  listeners_.remove_files();
  // 6. Stop accepting: serve what our own sockets' backlogs hold, close the acceptors, close
  //    idle connections and mark the busy ones as draining.
  stop_accepting();
  // 7. Close our descriptors of the listening sockets. With socket activation the socket stays
  //    with systemd, queued connections wait for our successor, and nothing is lost.
  listeners_.close();
  // 8. Let requests in flight finish, up to --shutdown-timeout; close the rest.
  finish_in_flight();
  spdlog::info("stopped");
  return 0;
}

void Server::start_workers() {
  const unsigned n = worker_threads(options_);
  for (unsigned i = 0; i < n; ++i) {
    try {
      workers_.push_back(std::make_unique<Worker>(
          options_, listeners_, site_, access_log_, metrics_ ? &metrics_->worker(i) : nullptr,
          service_connections_, monitoring_connections_, backend_));
    } catch (const std::system_error& e) {
      // The ring of one worker more (the probe made one): memory, or a limit on rings.
      throw errno_error(fmt::format("{} for worker {} of {}", e.what(), i + 1, n),
                        e.code().value());
    }
  }
  std::vector<Worker*> all;
  for (auto& w : workers_) all.push_back(w.get());
  for (auto& w : workers_) w->set_siblings(all);
  running_ = workers_.size();
  for (auto& w : workers_) {
    w->start([this] {
      std::lock_guard lock(exit_mutex_);
      --running_;
      exited_.notify_all();
    });
  }
}

void Server::announce_ready() {
  for (const auto& l : listeners_.listeners()) {
    spdlog::info("listening on {}{}{}", l.name, l.metrics ? " (metrics only)" : "",
                 l.from_systemd ? " (from systemd)" : "");
  }
  spdlog::info("printerfacts {} ready with {} thread(s) on {}", PRINTERFACTS_VERSION,
               workers_.size(), io_backend_name(backend_));
  systemd::notify("READY=1");
  if (systemd::watchdog_interval().count() > 0) {
    asio::co_spawn(control_, watchdog(), log_connection_failure);
  }
}

int Server::serve_until_terminated() {
  control_.run();  // until dispatch_signals() stops it
  systemd::notify("STOPPING=1");
  return termination_signal_;
}

// systemd's watchdog (WatchdogSec=): a ping at half the interval, but only while every worker's
// event loop still answers, so a wedged worker gets the service restarted.
Task<> Server::watchdog() {
  const auto interval = systemd::watchdog_interval();
  spdlog::info("systemd watchdog every {}ms", interval.count() / 2000);
  Timer timer(control_);
  std::atomic<std::size_t> alive{workers_.size()};
  for (;;) {
    timer.expires_after(interval / 2);
    auto [ec] = co_await timer.async_wait(use_tuple);
    if (ec) co_return;
    if (alive.exchange(0) == workers_.size()) systemd::notify("WATCHDOG=1");
    for (auto& w : workers_) w->ping(alive);
  }
}

// SIGHUP reloads; SIGTERM and SIGINT stop the control loop, which run() then takes as the
// next step of shutting down (a second one ends the shutdown delay).
Task<> Server::dispatch_signals() {
  for (;;) {
    const int sig = co_await signals_.next();
    if (sig == 0) co_return;
    if (sig == SIGHUP) {
      reload();
      continue;
    }
    if (++terminations_ == 1) termination_signal_ = sig;
    control_.stop();
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
    for (auto& w : workers_) w->switch_site(site_, switched);
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

// Everything is still served, but /healthz says 503, so that whatever routes traffic here (a
// Kubernetes Service, a load balancer's health check) stops before the listeners close:
// Kubernetes removes a pod from its endpoints only after it sent SIGTERM. A second signal ends
// the delay early; the watchdog and reloads go on meanwhile.
void Server::lame_duck(int signal) {
  const char* signal_name = signal == SIGINT ? "SIGINT" : "SIGTERM";
  const bool delay = options_.shutdown_delay > Duration::zero();
  if (delay) {
    health_.leave();
    spdlog::info("received {}; serving {} more with /healthz answering 503", signal_name,
                 format_duration(options_.shutdown_delay));
    control_.restart();
    Timer timer(control_, options_.shutdown_delay);
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) control_.stop();
    });
    control_.run();  // until the delay is over, or dispatch_signals() sees a second signal
    if (terminations_ > 1) spdlog::info("second signal: ending the shutdown delay early");
  }
  shutdown_deadline_ = std::chrono::steady_clock::now() + options_.shutdown_timeout;
  spdlog::info("{}, shutting down (deadline {})",
               delay ? std::string("shutdown delay over") : fmt::format("received {}", signal_name),
               format_duration(options_.shutdown_timeout));
}

// In each worker's own thread: serve what is queued in our own sockets' backlogs, then close
// them; wake the connections waiting idle, so they close. Returns once every worker has.
void Server::stop_accepting() {
  std::latch stopped(static_cast<std::ptrdiff_t>(workers_.size()));
  std::atomic<std::size_t> open_connections{0};
  for (auto& w : workers_) w->stop_accepting(open_connections, stopped);
  stopped.wait();
  spdlog::info("stopped accepting; draining {} connection(s)", open_connections.load());
}

void Server::finish_in_flight() {
  {
    std::unique_lock lock(exit_mutex_);
    if (!exited_.wait_until(lock, shutdown_deadline_, [this] { return running_ == 0; })) {
      spdlog::warn("shutdown deadline passed; closing the remaining connections");
      for (auto& w : workers_) w->close_all();
    }
  }
  for (auto& w : workers_) w->join();
  workers_.clear();
}

}  // namespace printerfacts
