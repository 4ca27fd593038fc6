// printerfacts: parse the configuration, build the content, open the listeners, serve, and map
// the outcome to an exit code. Every start-up error is reported here, once.
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
#include "metrics/listen_queue.hpp"
#include "metrics/metrics.hpp"
#include "server/server.hpp"
#include "util/startup_error.hpp"

namespace {

using namespace printerfacts;

// --check: everything start-up would verify, without creating, changing or removing anything.
void check_listen_addresses(const Options& options) {
  std::vector<ListenAddress> all = options.listen;
  all.insert(all.end(), options.metrics_listen.begin(), options.metrics_listen.end());
  for (const auto& a : all) {
    if (a.kind != ListenAddress::Kind::unix_socket) continue;
    const auto slash = a.path.rfind('/');
    const std::string dir =
        slash == std::string::npos ? "." : (slash == 0 ? "/" : a.path.substr(0, slash));
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      throw StartupError("the directory " + dir + " of socket " + a.path + " does not exist");
    }
    switch (probe_path(a.path)) {
      case ExistingPath::not_socket:
        throw StartupError(a.path + " exists and is not a socket");
      case ExistingPath::live_socket:
        spdlog::warn("another instance is listening on {}; starting now would fail", a.path);
        break;
      default:
        break;
    }
  }
}

int healthcheck(const Options& options) {
  const HealthResult r = check_health(options.listen.front(), std::chrono::seconds(5));
  std::fprintf(r.healthy ? stdout : stderr, "%s\n", r.detail.c_str());
  return r.healthy ? 0 : 1;
}

// SIGHUP: the same command line parsed again, so its --config file is read again. The settings
// a reload can apply take effect; a change to any other is reported and waits for a restart.
// Everything is read and checked before anything changes: an error keeps the running site.
Reloader reloader(int argc, const char* const* argv, const Options& running,
                  const MetricsSource* metrics, const Health* health) {
  return [=, &running] {
    const CommandLine again =
        parse_command_line(argc, argv, [](const char* name) { return std::getenv(name); });
    if (!again.options) throw StartupError(again.error);
    const Options& o = *again.options;
    std::shared_ptr<const Site> site = Site::load(o, validate(o), metrics, health);
    for (const auto& flag : restart_only_changes(running, o)) {
      spdlog::warn("--{} changed; the new value takes effect at the next restart", flag);
    }
    std::string summary =
        fmt::format("{} facts, static files from {}, log level {}", site->content.facts.size(),
                    o.static_dir ? *o.static_dir : std::string("the binary"), o.log_level);
    return Reloaded{std::move(site), std::move(summary), o.log_level};
  };
}

int run(int argc, const char* const* argv, const Options& options) {
  if (options.healthcheck) return healthcheck(options);
  if (options.doctor) {
    const ListenAddress& where = options.listen.front();
    if (where.kind != ListenAddress::Kind::unix_socket) {
      throw StartupError("doctor looks at a Unix socket; " + where.to_string() + " is not one");
    }
    return run_doctor(DoctorRequest{options.doctor_as, where.path, options.doctor_nginx_pid});
  }
  const ResolvedIds ids = validate(options);
  Health health;
  // Content first: a missing facts file fails before any socket file is created.
  Content content = load_content(options);
  if (options.check) {
    check_listen_addresses(options);
    std::vector<std::string> where;
    for (const auto& a : options.listen) where.push_back(a.to_string());
    for (const auto& a : options.metrics_listen) where.push_back(a.to_string() + " (metrics)");
    fmt::print("configuration OK: {} facts, listen on {}, {} thread(s)\n", content.facts.size(),
               fmt::join(where, " "), worker_threads(options));
    return 0;
  }
  ListenerSet listeners = ListenerSet::open(options, ids);
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
  }
  const MetricsSource* source = metrics ? &*metrics : nullptr;
  auto site = std::make_shared<const Site>(
      std::move(content), PeerAllowList{ids.allow_uids, ids.allow_gids}, source,
      options.metrics_on_main, &health, Forwarding{ids.trusted, ids.client_header});
  Server server(options, std::move(listeners), metrics ? &*metrics : nullptr, health,
                std::move(site), reloader(argc, argv, options, source, &health));
  return server.run();
}

}  // namespace

int main(int argc, char** argv) {
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
  try {
    setup_diagnostics(options.log_format == Options::LogFormat::json, options.log_level);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "printerfacts: %s\n", e.what());
    return 1;
  }
  try {
    return run(argc, argv, options);
  } catch (const StartupError& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    spdlog::critical("unexpected error: {}", e.what());
    return 1;
  }
}
