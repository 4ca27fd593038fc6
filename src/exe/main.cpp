// printerfacts: parse the configuration, build the content, open the listeners, serve, and map
// the outcome to an exit code. Every start-up error is reported here, once.
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <optional>

#include "client/doctor.hpp"
#include "client/healthcheck.hpp"
#include "config/cli.hpp"
#include "connections/site.hpp"
#include "listeners/listener_set.hpp"
#include "listeners/unix_socket.hpp"
#include "log/diagnostics.hpp"
#include "log/log_file.hpp"
#include "log/log_stream.hpp"
#include "metrics/listen_queue.hpp"
#include "metrics/metrics.hpp"
#include "server/descriptor_limit.hpp"
#include "server/reloader.hpp"
#include "server/server.hpp"
#include "util/startup_error.hpp"

namespace {

using namespace printerfacts;

// A loss of log lines is told as a warning in the diagnostics.
void say(const std::string& message) {
  spdlog::warn("{}", message);
}

// Where diagnostics go: stderr, written by a thread of its own (log/log_stream.hpp).
const std::shared_ptr<LogStream>& diagnostics_stream() {
  static const auto stream = std::make_shared<LogStream>(STDERR_FILENO, "diagnostics", say, false);
  return stream;
}

int healthcheck(const Options& options) {
  const HealthResult r = check_health(options.listen.front(), std::chrono::seconds(5));
  std::fprintf(r.healthy ? stdout : stderr, "%s\n", r.detail.c_str());
  return r.healthy ? exit_code::ok : exit_code::failure;
}

// How long the logs may take to be written out once the shutdown deadline has passed: a
// healthy stream needs microseconds; a stuck one gets no more than this.
constexpr auto kLogGrace = std::chrono::milliseconds(200);

// Serves with `options`; returns the exit code, and sets `logs_deadline` to when whatever is
// left of the diagnostics must be written by.
int run(int argc, const char* const* argv, const Options& options,
        std::chrono::steady_clock::time_point& logs_deadline) {
  if (options.healthcheck) return healthcheck(options);
  if (options.doctor) {
    const ListenAddress& where = options.listen.front();
    if (where.kind != ListenAddress::Kind::unix_socket) {
      throw StartupError("doctor looks at a Unix socket; " + where.to_string() + " is not one");
    }
    return run_doctor(DoctorRequest{options.doctor_as, where.path, options.doctor_nginx_pid});
  }
  // Serving, unless a check below returns first: a SIGTERM from here on waits for the control
  // loop and ends in a clean shutdown (the checks end in moments either way).
  if (!options.check && !options.check_reload) block_server_signals();
  const ResolvedIds ids = validate(options);
  Health health;
  // Content first: a missing facts file fails before any socket file is created.
  Content content = load_content(options.site);
  if (options.check_reload) {
    // What a reload would read and apply (the rest is checked as a restart would, by validate).
    fmt::print("reload configuration OK: {} facts, log level {}\n", content.facts.size(),
               options.site.log_level);
    return exit_code::ok;
  }
  // Before any socket: the connections --max-connections admits must have descriptors.
  const DescriptorLimit fds = raise_descriptor_limit(
      descriptors_needed(options, worker_threads(options)), options.max_connections);
  if (!fds.warning.empty()) spdlog::warn("{}", fds.warning);
  std::string why_not_io_uring;
  const IoBackend backend = choose_io_backend(options.io_backend, why_not_io_uring);
  if (options.io_backend == Options::IoBackend::automatic && backend == IoBackend::epoll) {
    spdlog::info("using epoll: {}", why_not_io_uring);
  }
  if (options.check) {
    const std::size_t warnings = ListenerSet::check(options, ids) + (fds.warning.empty() ? 0 : 1);
    std::vector<std::string> where;
    for (const auto& a : options.listen) where.push_back(a.to_string());
    for (const auto& a : options.metrics_listen) where.push_back(a.to_string() + " (metrics)");
    fmt::print("configuration OK{}: {} facts, listen on {}, {} thread(s) on {}\n",
               warnings > 0 ? " (with the warnings above)" : "", content.facts.size(),
               fmt::join(where, " "), worker_threads(options), io_backend_name(backend));
    return exit_code::ok;
  }
  // The access log's own writer: the workers hand lines over and never wait for stdout.
  std::optional<LogFile> access_file;
  if (options.access_log && options.access_log_file) access_file.emplace(*options.access_log_file);
  std::optional<LogStream> access_log;
  if (options.access_log) {
    access_log.emplace(access_file ? access_file->fd() : STDOUT_FILENO, "access", say, true);
  }
  // Started by an upgrade (SIGUSR2 to our predecessor): the pipe to say "ready" on.
  const int predecessor = take_upgrade_fd();
  ListenerSet listeners = ListenerSet::open(options, ids);
  if (options.fd_store) {
    const std::size_t stored = listeners.keep_in_fd_store();
    if (stored > 0) spdlog::info("kept {} socket(s) in systemd's file-descriptor store", stored);
  }
  if (listeners.stale_sockets_replaced() > 0) {
    spdlog::warn("removed {} stale socket file(s) left by a previous run",
                 listeners.stale_sockets_replaced());
  }
  // Metrics are recorded only when something can read them.
  std::vector<MetricsListener> observed;
  bool metrics_listener = false;
  for (const auto& l : listeners.listeners()) {
    observed.push_back({l.name, l.is_unix, socket_inode(l.fd.get())});
    metrics_listener |= l.metrics;
  }
  std::optional<Metrics> metrics;
  if (metrics_listener || options.metrics_on_main) {
    metrics.emplace(std::move(observed), worker_threads(options));
    metrics->stale_sockets_removed(listeners.stale_sockets_replaced());
    metrics->io_backend(io_backend_name(backend));
    metrics->observe_logs({access_log ? &*access_log : nullptr, diagnostics_stream().get()});
  }
  const MetricsSource* source = metrics ? &*metrics : nullptr;
  // What every Site of this process shares; a reload builds a new one from options.site alone.
  const SiteFixtures fixtures{source, options.metrics_on_main, &health};
  auto site = std::make_shared<const Site>(
      std::move(content), PeerAllowList{ids.site.allow_uids, ids.site.allow_gids}, fixtures.metrics,
      fixtures.metrics_on_main, fixtures.health,
      Forwarding{ids.site.trusted, ids.site.client_header, ids.site.proxy_senders});
  Server server(options, std::move(listeners), metrics ? &*metrics : nullptr, health,
                std::move(site), command_line_reloader(argc, argv, options, fixtures),
                access_log ? &*access_log : nullptr, backend, current_invocation(argc, argv),
                predecessor, access_file ? &*access_file : nullptr);
  const int code = server.run();
  logs_deadline = server.shutdown_deadline() + kLogGrace;
  if (access_log && !access_log->drain(logs_deadline)) {
    spdlog::error("{} access log line(s) not written at exit: stdout is not being read",
                  access_log->dropped(LogDrop::exit));
  }
  return code;
}

// Descriptors 0, 1 and 2 are the standard streams only if they are open when we start: started
// with one closed, the first socket or file we open would take its number, and a log line meant
// for stdout would be written into a client's connection. Each closed one is opened on
// /dev/null first, before anything else can take it.
void keep_standard_streams_open() {
  for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    const int opened = ::open("/dev/null", O_RDWR);     // the lowest free number: fd itself
    if (opened != fd) std::_Exit(exit_code::os_error);  // no /dev/null, nowhere to say so
  }
}

}  // namespace

int main(int argc, char** argv) {
  keep_standard_streams_open();
  // A peer that disconnects must not kill the process; socket writes use MSG_NOSIGNAL already,
  // this covers stdout when the access log goes to a pipe whose reader went away.
  ::signal(SIGPIPE, SIG_IGN);
  const CommandLine command_line =
      parse_command_line(argc, argv, [](const char* name) { return std::getenv(name); });
  if (!command_line.options) {
    if (!command_line.error.empty()) {
      std::fprintf(stderr, "printerfacts: %s\nRun with --help for more information.\n",
                   command_line.error.c_str());
    }
    return command_line.exit_code;
  }
  const Options& options = *command_line.options;
  if (options.print_config) {
    std::fputs(render_config(options, command_line.origins).c_str(), stdout);
    std::fflush(stdout);
  }
  try {
    setup_diagnostics(diagnostics_stream(), options.log_format == Options::LogFormat::json,
                      options.site.log_level);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "printerfacts: %s\n", e.what());
    return exit_code::config;
  }
  auto logs_deadline = std::chrono::steady_clock::time_point::max();
  int code = exit_code::software;
  try {
    // --print-config: printed above; the configuration is checked as for --check-reload.
    code = options.print_config ? (validate(options), exit_code::ok)
                                : run(argc, argv, options, logs_deadline);
  } catch (const StartupError& e) {
    spdlog::error("{}", e.what());
    code = e.code();
  } catch (const std::exception& e) {
    spdlog::critical("unexpected error: {}", e.what());
  }
  // At least a moment for what was said last (a stuck access log is reported just now).
  logs_deadline = std::max(logs_deadline, std::chrono::steady_clock::now() + kLogGrace);
  if (logs_deadline == std::chrono::steady_clock::time_point::max()) {
    logs_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  }
  // A stderr nobody reads must not keep the process from exiting: past the deadline, what it
  // still holds is lost, and the writer thread, stuck in write(2), ends with the process.
  if (!diagnostics_stream()->drain(logs_deadline)) std::_Exit(code);
  return code;
}
