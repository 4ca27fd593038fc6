// printerfacts: parse the configuration, build the content, open the listeners, serve, and map
// the outcome to an exit code. Every start-up error is reported here, once.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "config/cli.hpp"
#include "listeners/listener_set.hpp"
#include "listeners/unix_socket.hpp"
#include "routing/router.hpp"
#include "server/server.hpp"
#include "util/startup_error.hpp"

namespace {

using namespace printerfacts;

void setup_diagnostics() {
  auto logger = spdlog::stderr_logger_mt("printerfacts");
  // Under systemd, stderr goes to the journal, which stamps each line itself.
  if (std::getenv("JOURNAL_STREAM") != nullptr) {
    logger->set_pattern("%l: %v");
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc);
  }
  spdlog::set_default_logger(logger);
}

// --check: everything start-up would verify, without creating, changing or removing anything.
void check_listen_addresses(const Options& options) {
  for (const auto& a : options.listen) {
    if (a.kind != ListenAddress::Kind::unix_socket) continue;
    const auto slash = a.path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : a.path.substr(0, slash));
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

int run(const Options& options) {
  validate(options);
  Content content{options.facts_file ? Facts::load_file(*options.facts_file) : Facts::embedded(),
                  options.static_dir ? StaticFiles::directory(*options.static_dir)
                                     : StaticFiles::embedded()};
  if (options.check) {
    check_listen_addresses(options);
    std::string where;
    for (const auto& a : options.listen) where += " " + a.to_string();
    std::printf("configuration OK: %zu facts, listen on%s, %u thread(s)\n", content.facts.size(),
                where.c_str(), options.threads);
    return 0;
  }
  const Router router(content);
  ListenerSet listeners = ListenerSet::open(options);
  if (listeners.stale_sockets_replaced() > 0) {
    spdlog::warn("removed {} stale socket file(s) left by a previous run", listeners.stale_sockets_replaced());
  }
  Server server(options, router, std::move(listeners));
  return server.run();
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that disconnects must not kill the process; socket writes use MSG_NOSIGNAL already,
  // this covers stdout when the access log goes to a pipe whose reader went away.
  ::signal(SIGPIPE, SIG_IGN);
  const CommandLine command_line = parse_command_line(argc, argv, [](const char* name) { return std::getenv(name); });
  if (!command_line.options) return command_line.exit_code;
  setup_diagnostics();
  try {
    return run(*command_line.options);
  } catch (const StartupError& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const std::exception& e) {
    spdlog::critical("unexpected error: {}", e.what());
    return 1;
  }
}
