#include "config/cli.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

constexpr const char* kEnvironmentHelp = R"(
Environment:
  SOCKPATH=PATH     listen on the Unix socket PATH (when no --listen is given)
  PORT=N            listen on tcp:[::]:N (when neither --listen nor SOCKPATH is given; default 3000)
  LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES
                    systemd socket activation: serve on the passed sockets instead; they are
                    never created, chmod-ed or removed by printerfacts; a socket named
                    "metrics" (FileDescriptorName=metrics) serves only /metrics and /healthz
  NOTIFY_SOCKET, WATCHDOG_USEC
                    systemd service notification (Type=notify) and watchdog
  JOURNAL_STREAM    set by systemd when stdout/stderr go to the journal: log lines then carry
                    no timestamp of their own (the journal adds one)

Examples:
  printerfacts --listen unix:./printerfacts.sock
  printerfacts healthcheck --listen unix:/run/printerfacts/http.sock
  printerfacts doctor --as www-data --listen unix:/run/printerfacts/http.sock
  SOCKPATH=/run/printerfacts/http.sock printerfacts --socket-group www-data
  printerfacts --listen unix:/run/printerfacts/http.sock --listen tcp:127.0.0.1:3000
)";

// A CLI11 validator-and-converter for a value our own parser understands.
template <class Parse>
auto converter(Parse parse, std::string what) {
  return [parse, what](const std::string& text) -> std::string {
    return parse(text) ? std::string() : "expected " + what + ", got \"" + text + "\"";
  };
}

std::string format_mode(mode_t mode) {
  return fmt::format("{:04o}", mode);
}

std::string octal_mode(const std::string& s) {
  if (s.empty() || s.size() > 4 || s.find_first_not_of("01234567") != std::string::npos) {
    return "expected an octal mode such as 0660, got \"" + s + "\"";
  }
  return {};
}

}  // namespace

CommandLine parse_command_line(int argc, const char* const* argv, const GetEnv& getenv) {
  CLI::App app{"printerfacts: random printer facts over HTTP, on a Unix domain socket.",
               "printerfacts"};
  app.set_version_flag("--version", std::string("printerfacts ") + PRINTERFACTS_VERSION);
  app.footer(kEnvironmentHelp);
  app.get_formatter()->column_width(34);

  // Options{} is the configuration: a flag that is not given leaves its field as Options{} has
  // it. The text forms below, which --help shows as defaults, are written from those values.
  Options o;
  std::vector<std::string> listen;
  std::string socket_mode = format_mode(o.socket_mode);
  std::string max_header = format_size(o.max_header_size), max_body = format_size(o.max_body_size);
  std::string header_timeout = format_duration(o.header_timeout),
              idle_timeout = format_duration(o.idle_timeout),
              send_timeout = format_duration(o.send_timeout),
              shutdown_timeout = format_duration(o.shutdown_timeout),
              shutdown_delay = format_duration(o.shutdown_delay);
  std::string access_log = o.access_log ? "on" : "off";

  app.add_option("--listen", listen,
                 "unix:PATH or tcp:HOST:PORT; repeat to listen on several (default: $SOCKPATH, "
                 "else tcp:[::]:$PORT)")
      ->type_name("ADDR");
  app.add_option("--socket-mode", socket_mode, "octal permission bits of created Unix sockets")
      ->type_name("MODE")
      ->capture_default_str()
      ->check(octal_mode);
  app.add_flag("--allow-world", o.allow_world,
               "permit a socket mode that lets every local user connect (e.g. 0666)");
  app.add_option("--socket-group", o.socket_group,
                 "group (name or GID) of created Unix sockets (default: the process's group)")
      ->type_name("GROUP");
  app.add_option("--backlog", o.backlog, "listen backlog of created sockets")
      ->capture_default_str();
  app.add_option("--max-connections", o.max_connections,
                 "open connections kept at most, all threads together; more are closed at once")
      ->capture_default_str();
  app.add_option("--threads", o.threads, "worker threads; 0: one per CPU")
      ->type_name("N")
      ->capture_default_str();
  app.add_option("--facts-file", o.facts_file, "load facts from FILE, one per line (UTF-8)")
      ->type_name("FILE");
  app.add_option("--static-dir", o.static_dir,
                 "serve /static/ from DIR instead of the built-in assets")
      ->type_name("DIR");
  app.add_option("--max-header-size", max_header, "limit on request line plus headers")
      ->capture_default_str()
      ->check(converter(parse_size, "a size such as 8k"));
  app.add_option("--max-body-size", max_body, "limit on a request body (no route takes one)")
      ->capture_default_str()
      ->check(converter(parse_size, "a size such as 64k"));
  app.add_option("--header-timeout", header_timeout, "time to receive a whole request")
      ->capture_default_str()
      ->check(converter(parse_duration, "a duration such as 10s"));
  app.add_option("--idle-timeout", idle_timeout, "time a keep-alive connection may stay idle")
      ->capture_default_str()
      ->check(converter(parse_duration, "a duration such as 60s"));
  app.add_option("--send-timeout", send_timeout, "time to write one response")
      ->capture_default_str()
      ->check(converter(parse_duration, "a duration such as 60s"));
  app.add_option("--shutdown-timeout", shutdown_timeout,
                 "time in-flight requests get to finish after SIGTERM")
      ->capture_default_str()
      ->check(converter(parse_duration, "a duration such as 10s"));
  app.add_option("--shutdown-delay", shutdown_delay,
                 "after SIGTERM, keep serving this long with /healthz answering 503 (lame duck)")
      ->capture_default_str()
      ->check(converter(parse_duration, "a duration such as 5s"));
  app.add_option("--access-log", access_log, "one line per request on stdout")
      ->capture_default_str()
      ->check(CLI::IsMember({"on", "off"}));
  std::vector<std::string> metrics_listen;
  std::string metrics_socket_mode = format_mode(o.metrics_socket_mode);
  std::string log_format = o.log_format == Options::LogFormat::json ? "json" : "text";
  app.add_option(
         "--metrics-listen", metrics_listen,
         "serve only /metrics and /healthz on ADDR (unix:PATH or tcp:HOST:PORT); repeatable")
      ->type_name("ADDR");
  app.add_option("--metrics-socket-mode", metrics_socket_mode,
                 "octal permission bits of metrics Unix sockets")
      ->type_name("MODE")
      ->capture_default_str()
      ->check(octal_mode);
  app.add_option("--metrics-socket-group", o.metrics_socket_group, "group of metrics Unix sockets")
      ->type_name("GROUP");
  app.add_flag("--metrics-on-main", o.metrics_on_main, "also serve /metrics on the main listeners");
  app.add_option("--allow-uid", o.allow_uid,
                 "only Unix-socket peers running as this user (name or UID) may talk; repeatable")
      ->type_name("USER");
  app.add_option(
         "--allow-gid", o.allow_gid,
         "only Unix-socket peers with this primary group (name or GID) may talk; repeatable")
      ->type_name("GROUP");
  app.add_option("--trust-forwarded", o.trust_forwarded,
                 "believe the client header of peers matching uid:USER, gid:GROUP (Unix socket) "
                 "or tcp:CIDR; repeatable")
      ->type_name("PEER");
  app.add_option("--client-header", o.client_header,
                 "the header trusted peers name the client in: X-Forwarded-For, X-Real-IP or "
                 "Forwarded")
      ->type_name("NAME")
      ->capture_default_str();
  app.add_option("--log-format", log_format, "access log and diagnostics as text or JSON lines")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", o.log_level, "least severe diagnostic printed")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  // CLI11's TOML reader: one `flag-name = value` line per flag, lists as ["a", "b"].
  app.set_config("--config", "", "read further flags from FILE (TOML); SIGHUP re-reads it")
      ->type_name("FILE");
  // A misspelt setting is an error, not a silently ignored line (CLI11 ignores them by default).
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.add_flag("--check", o.check, "validate the configuration and exit (0 when valid)");
  app.add_flag("--healthcheck", o.healthcheck,
               "ask the running server on the listen address for /healthz; exit 0 if healthy");
  CLI::App* healthcheck = app.add_subcommand(
      "healthcheck", "ask a running server for /healthz; exit 0 if it answers 200, else 1");
  healthcheck->add_option("--listen", listen, "the server's address (default: as for serving)")
      ->type_name("ADDR");

  CLI::App* doctor = app.add_subcommand(
      "doctor",
      "why can't USER (nginx) connect? walk the socket's path as USER, check its mode and group, "
      "connect as USER (as root), check the running nginx; exit 0 if USER gets an answer");
  doctor->add_option("--as", o.doctor_as, "the user who must be able to connect, e.g. www-data")
      ->type_name("USER")
      ->required();
  doctor->add_option("--listen", listen, "the socket (default: as for serving)")->type_name("ADDR");
  doctor
      ->add_option("--nginx-pid", o.doctor_nginx_pid,
                   "the nginx master to check (default: /run/nginx.pid, else every nginx)")
      ->type_name("PID");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return CommandLine{std::nullopt, app.exit(e), {}};  // help, version
    return CommandLine{std::nullopt, e.get_exit_code(), e.what()};
  }
  if (const auto* config = app.get_config_ptr(); config != nullptr && config->count() > 0) {
    o.config_file = config->as<std::string>();
  }

  o.healthcheck = o.healthcheck || healthcheck->parsed();
  o.doctor = doctor->parsed();
  try {
    if (!listen.empty()) {
      for (const auto& l : listen) o.listen.push_back(parse_listen_address(l));
    } else if (const char* sock = getenv("SOCKPATH"); sock != nullptr && *sock != '\0') {
      o.listen.push_back(parse_listen_address(std::string("unix:") + sock));
    } else {
      const char* port = getenv("PORT");
      o.listen.push_back(
          parse_listen_address(std::string("tcp:[::]:") + (port && *port ? port : "3000")));
    }
    for (const auto& l : metrics_listen) o.metrics_listen.push_back(parse_listen_address(l));
  } catch (const StartupError& e) {
    return CommandLine{std::nullopt, 2, e.what()};
  }
  o.socket_mode = static_cast<mode_t>(std::stoul(socket_mode, nullptr, 8));
  o.max_header_size = *parse_size(max_header);
  o.max_body_size = *parse_size(max_body);
  o.header_timeout = *parse_duration(header_timeout);
  o.idle_timeout = *parse_duration(idle_timeout);
  o.send_timeout = *parse_duration(send_timeout);
  o.shutdown_timeout = *parse_duration(shutdown_timeout);
  o.shutdown_delay = *parse_duration(shutdown_delay);
  o.access_log = access_log == "on";
  o.metrics_socket_mode = static_cast<mode_t>(std::stoul(metrics_socket_mode, nullptr, 8));
  o.log_format = log_format == "json" ? Options::LogFormat::json : Options::LogFormat::text;
  return CommandLine{std::move(o), 0, {}};
}

}  // namespace printerfacts
