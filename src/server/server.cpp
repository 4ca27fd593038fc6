#include "server/server.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/inotify.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstring>
#include <latch>

#include "connections/admission.hpp"
#include "listeners/systemd.hpp"
#include "log/diagnostics.hpp"
#include "metrics/listen_queue.hpp"
#include "util/build_info.hpp"
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
               IoBackend backend, Invocation invocation, int predecessor, LogFile* access_file)
    : options_(options),
      metrics_(metrics),
      health_(health),
      site_(std::move(site)),
      reload_(std::move(reload)),
      access_log_(access_log),
      backend_(backend),
      listeners_(std::move(listeners)),
      service_connections_(options.max_connections),
      uid_quota_(options.max_connections_per_uid),
      access_file_(access_file),
      invocation_(std::move(invocation)),
      predecessor_(predecessor),
      started_by_upgrade_(predecessor >= 0),
      fates_(listeners_.listeners().size(), PathFate::ours) {}

Server::~Server() = default;  // each Worker stops its loop and joins its thread

int Server::run() {
  // 0. The signals are blocked and read from a signalfd already (the member signals_).
  // 1. Workers accept and serve; SIGHUP reloads from here on.
  start_workers();
  asio::co_spawn(control_, dispatch_signals(), log_connection_failure);
  const auto& all = listeners_.listeners();
  if (options_.socket_guard &&
      std::any_of(all.begin(), all.end(), [](const Listener& l) { return l.owned.has_value(); })) {
    asio::co_spawn(control_, guard_socket_paths(), log_connection_failure);
    if (const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC); fd >= 0) {
      asio::co_spawn(control_, watch_socket_directories(fd), log_connection_failure);
    } else {
      spdlog::debug("socket guard: no inotify ({}); looking once a second", std::strerror(errno));
    }
  }
  // 2. Ready: systemd and the log are told, the watchdog starts.
  announce_ready();
  // 3. Serve until SIGTERM or SIGINT.
  const int signal = serve_until_terminated();
  if (successor_ > 0) {
    // Told to stop while an upgrade is under way: the new process is not ready, and would
    // otherwise be left serving alone, unasked.
    ::kill(successor_, SIGKILL);
    ::waitpid(successor_, nullptr, 0);
    spdlog::warn("stopping: the upgrade under way (process {}) is cancelled", successor_);
    successor_ = -1;
  }
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
          service_connections_, monitoring_connections_, backend_, &uid_quota_));
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
                 l.from_systemd ? " (from systemd)"
                 : l.inherited  ? " (inherited)"
                                : "");
  }
  spdlog::info("printerfacts {} (commit {}) ready with {} thread(s) on {}", kBuildVersion,
               kBuildCommit, workers_.size(), io_backend_name(backend_));
  if (predecessor_ >= 0) {
    // Started by an upgrade: the process that started us says READY=1 for us, with MAINPID=,
    // once it has handed over (we are not the unit's main process until then).
    tell_predecessor_ready(predecessor_);
    predecessor_ = -1;
  } else {
    systemd::notify("READY=1");
  }
  if (systemd::notify_socket_set()) {
    asio::co_spawn(control_, report_status(), log_connection_failure);
  }
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

// What `systemctl status` shows under the unit's name (STATUS=), every few seconds: the open
// connections, and the requests served where metrics are kept. One datagram per 5 s, sent
// without waiting: this thread also reads the signals and guards the sockets.
Task<> Server::report_status() {
  Timer timer(control_);
  if (started_by_upgrade_) {
    // Started by an upgrade: not the unit's main process until our predecessor has handed over
    // (just after we said ready), and systemd refuses what others say.
    timer.expires_after(std::chrono::seconds(5));
    co_await timer.async_wait(use_tuple);
  }
  for (;;) {
    std::string status = fmt::format("STATUS=serving on {}: {} connection(s) open",
                                     io_backend_name(backend_), service_connections_.open());
    if (metrics_) status += fmt::format(", {} request(s) served", metrics_->requests_finished());
    systemd::notify_if_ready(status);
    timer.expires_after(std::chrono::seconds(5));
    auto [ec] = co_await timer.async_wait(use_tuple);
    if (ec) co_return;
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
    if (sig == SIGUSR1) {
      // logrotate's postrotate (and nginx's convention): the file was moved away; write a new
      // one at the path. Lines already handed over go to whichever file is open when written.
      if (access_file_ == nullptr) {
        spdlog::info("received SIGUSR1: no --access-log-file to reopen");
      } else if (const std::string failed = access_file_->reopen(); !failed.empty()) {
        spdlog::error("received SIGUSR1: {}; still writing to the old file", failed);
      } else {
        spdlog::info("received SIGUSR1: reopened {}", access_file_->path());
      }
      continue;
    }
    if (sig == SIGUSR2) {
      // On the control loop of its own, so that signals, reloads and the watchdog go on while
      // the new binary starts.
      asio::co_spawn(control_, upgrade(), log_connection_failure);
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
  const std::string signal_name = ending_ == Ending::taken_over ? "a successor took over"
                                  : ending_ == Ending::upgraded ? "handed over to the upgrade"
                                  : signal == SIGINT            ? "received SIGINT"
                                                                : "received SIGTERM";
  // A successor serves the paths already: nothing routes traffic here any more to wait for.
  const bool delay = options_.shutdown_delay > Duration::zero() && ending_ == Ending::signal;
  if (delay) {
    health_.leave();
    spdlog::info("{}; serving {} more with /healthz answering 503", signal_name,
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
               delay ? std::string("shutdown delay over") : signal_name,
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

// ---- The socket guard (--socket-guard) ---------------------------------------------------------
// Each path of a socket file we created is looked at once a second, and at once whenever inotify
// says its directory changed. The tick alone would meet the guard's promise (a change seen
// within 2 s) and is what works everywhere: where inotify cannot be had (the per-user limit on
// instances, file systems that do not report, a directory replaced as a whole); inotify only
// shortens the time a deleted path leaves clients refused, from up to a second to about a
// millisecond. Both run on the control thread and cost nothing per request.

Task<> Server::guard_socket_paths() {
  Timer timer(control_);
  for (;;) {
    timer.expires_after(std::chrono::seconds(1));
    auto [ec] = co_await timer.async_wait(use_tuple);
    if (ec) co_return;
    check_socket_paths();
  }
}

void Server::watch_socket_directories_once(int fd) const {
  for (const auto& l : listeners_.listeners()) {
    if (!l.owned) continue;
    // Again at each event: the directory may have been made anew, the old watch gone with it.
    ::inotify_add_watch(fd, socket_directory(l.owned->path).c_str(),
                        IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
                            IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
  }
}

Task<> Server::watch_socket_directories(int fd) {
  asio::posix::basic_stream_descriptor<Executor> events(control_, fd);
  watch_socket_directories_once(fd);
  std::vector<char> buffer(4096);
  for (;;) {
    auto [ec, n] = co_await events.async_read_some(asio::buffer(buffer), use_tuple);
    if (ec) break;
    // What changed does not matter: every guarded path is looked at, a few lstat() calls.
    check_socket_paths();
    watch_socket_directories_once(fd);
  }
}

void Server::check_socket_paths() {
  if (ending_ != Ending::signal) return;
  bool lost = false;
  for (std::size_t i = 0; i < listeners_.listeners().size(); ++i) {
    const Listener& l = listeners_.listeners()[i];
    if (!l.owned || !l.is_unix) continue;
    const std::string path = l.owned->path;
    const PathFate before = fates_[i];
    const PathFate now = probe_fate(*l.owned);
    fates_[i] = now;
    switch (now) {
      case PathFate::ours:
        if (before != PathFate::ours) spdlog::info("socket {} is ours again", path);
        break;
      case PathFate::deleted:
        try {
          recreate_socket(i);
          fates_[i] = PathFate::ours;
        } catch (const std::exception& e) {
          if (before != PathFate::deleted) {
            spdlog::error(
                "the socket file {} was deleted and cannot be made again: {}; trying "
                "again every second",
                path, e.what());
          }
          lost = true;
        }
        break;
      case PathFate::successor:
        spdlog::info("another server took over {}; stopping accepting and draining", path);
        ending_ = Ending::taken_over;
        control_.stop();
        return;
      case PathFate::replaced:
        // Never deleted: whatever it is, someone put it there on purpose or by mistake, and
        // removing it could destroy what they meant to keep (or another server's socket we
        // could not probe). Said once, and /healthz tells the monitoring until it is fixed.
        if (before != PathFate::replaced) {
          spdlog::error(
              "the socket path {} now holds {}; left alone (it is not ours to "
              "delete): no client reaches us there, /healthz answers 503 until the "
              "path is removed (we then make it again) or holds our socket",
              path, describe_path(path));
        }
        lost = true;
        break;
    }
  }
  health_.set_socket_lost(lost);
}

void Server::recreate_socket(std::size_t index) {
  // Under the lock and the same way as at start: mode and group set before listen(), so no
  // one can connect to it with wider permissions than configured.
  const Listener& l = listeners_.recreate(index);
  for (auto& w : workers_) w->replace_listener(index, l);
  if (metrics_) metrics_->socket_recreated(index, socket_inode(l.fd.get()));
  spdlog::warn(
      "the socket file {} was deleted from under us; made it again (mode {:04o}) and "
      "serving on it",
      l.owned->path, l.created_with.mode);
}

// ---- Upgrade in place (SIGUSR2) ---------------------------------------------------------------

namespace {
// Time the new binary has to become ready. Its start-up (content, sockets from us, workers)
// takes milliseconds; a minute leaves room for a loaded machine and a large facts file.
constexpr auto kUpgradeTimeout = std::chrono::seconds(60);
}  // namespace

Task<> Server::upgrade() {
  if (successor_ > 0) {
    spdlog::warn("received SIGUSR2 during an upgrade (process {}); ignored", successor_);
    co_return;
  }
  if (ending_ != Ending::signal || terminations_ > 0) co_return;
  spdlog::info("received SIGUSR2: starting {} to take over", invocation_.executable);
  const auto failed = [this](const std::string& why) {
    spdlog::error("upgrade failed, still serving: {}", why);
    if (metrics_) metrics_->upgrade_finished(false);
  };
  Successor next;
  try {
    next = start_successor(invocation_, listeners_);
  } catch (const std::exception& e) {
    failed(e.what());
    co_return;
  }
  successor_ = next.pid;
  // Shared with the timer's handler, which may run after this coroutine has ended.
  struct Wait {
    asio::posix::basic_stream_descriptor<Executor> pipe;
    bool timed_out = false;
  };
  auto wait = std::make_shared<Wait>(Wait{{control_, next.said.release()}});
  Timer timer(control_, kUpgradeTimeout);
  timer.async_wait([wait](const boost::system::error_code& ec) {
    if (!ec) {
      wait->timed_out = true;
      wait->pipe.cancel();
    }
  });
  std::string said;
  char buffer[256];
  for (;;) {
    auto [ec, n] = co_await wait->pipe.async_read_some(asio::buffer(buffer), use_tuple);
    said.append(buffer, n);
    if (ec || said.find('\n') != std::string::npos) break;
  }
  timer.cancel();
  if (successor_ < 0) co_return;  // stopping: run() has cancelled it
  const pid_t pid = std::exchange(successor_, -1);
  std::string why;
  if (successor_ready(said, invocation_.executable, why)) {
    spdlog::info("process {} ({}) is ready; handing over to it and draining", pid,
                 invocation_.executable);
    if (metrics_) metrics_->upgrade_finished(true);
    // Under systemd the unit follows its new main process; the files are the successor's.
    systemd::hand_over_to(pid);
    listeners_.disown_files();
    ending_ = Ending::upgraded;
    control_.stop();
    co_return;
  }
  if (wait->timed_out) {
    ::kill(pid, SIGKILL);
    why = fmt::format("{} (process {}) was not ready within {}s; killed it", invocation_.executable,
                      pid, kUpgradeTimeout.count());
  }
  // It has exited, or is about to (it closed the pipe, or was killed): reaped here, looking
  // every 10 ms on the control loop (not sleeping on it: signals and the watchdog go on), and
  // killed if it is still there after 5 s.
  int status = 0;
  Timer reap(control_);
  for (int i = 0; ::waitpid(pid, &status, WNOHANG) == 0; ++i) {
    if (i == 500) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      break;
    }
    reap.expires_after(std::chrono::milliseconds(10));
    co_await reap.async_wait(use_tuple);
  }
  if (why.empty()) {
    why = WIFEXITED(status)
              ? fmt::format(
                    "{} (process {}) exited with status {} before it was ready; its "
                    "log says why",
                    invocation_.executable, pid, WEXITSTATUS(status))
              : fmt::format("{} (process {}) was killed by signal {} before it was ready",
                            invocation_.executable, pid, WTERMSIG(status));
  }
  failed(why);
}

}  // namespace printerfacts
