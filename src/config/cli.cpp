#include "config/cli.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "util/build_info.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

constexpr const char* kEnvironmentHelp = R"(
Environment:
{}  LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES
                    systemd socket activation: serve on the passed sockets instead; they are
                    never created, chmod-ed or removed by printerfacts; a socket named
                    "metrics" (FileDescriptorName=metrics) serves only /metrics and /healthz
  NOTIFY_SOCKET, WATCHDOG_USEC
                    systemd service notification (Type=notify) and watchdog
  JOURNAL_STREAM    set by systemd when stdout/stderr go to the journal: log lines then carry
                    no timestamp of their own (the journal adds one)

Every --NAME is also a key NAME of the --config file (TOML); flags win over the file, and the
file over the environment. Reloadable on SIGHUP: {}.
Exit status: 0 success, 1 not healthy or failed while serving, 64 a flag not understood,
66 an input missing, 69 the address in use, 70 an internal error, 71 a system error,
73 the access log file cannot be opened, 77 a permission missing, 78 the configuration is wrong (printerfacts(1), EXIT STATUS).

Examples:
  printerfacts --listen unix:./printerfacts.sock
  printerfacts --config /etc/printerfacts/printerfacts.toml --print-config
  printerfacts healthcheck --listen unix:/run/printerfacts/http.sock
  printerfacts doctor --as www-data --listen unix:/run/printerfacts/http.sock
  SOCKPATH=/run/printerfacts/http.sock printerfacts --socket-group www-data
)";

// Flags and keys that are not settings: what the nearest-name suggestion also knows.
constexpr std::array<std::string_view, 6> kModes = {"config",       "check",       "check-reload",
                                                    "print-config", "healthcheck", "version"};

std::string footer() {
  std::string environment, reloadable;
  for (const Setting& s : settings()) {
    if (!s.env_help.empty()) {
      environment += fmt::format("  {:<16}  the default of --{} (see above)\n", s.env_help, s.name);
    }
    if (s.reloadable) reloadable += (reloadable.empty() ? "--" : ", --") + std::string(s.name);
  }
  return fmt::format(fmt::runtime(kEnvironmentHelp), environment, reloadable);
}

// `text` as a TOML basic string: quoted, with quotes, backslashes and control characters escaped
// (a path may hold any byte but NUL).
std::string toml_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
  return out + '"';
}

// A setting's error, worded the same wherever the value came from: what was written, what is
// wrong with it when there is more to say, and what was expected, with an example.
std::string bad_value(std::string_view where, const Setting& s, std::string_view written,
                      const std::string& why) {
  return fmt::format("{}{} {}: {}{}expected {}", where, s.name, written, why,
                     why.empty() ? "" : "; ", s.expected);
}

// The scalar `node` as the flag would take it, or nullopt for a table or an array.
std::optional<std::string> scalar_text(const toml::node& node) {
  if (const auto* v = node.as_string()) return v->get();
  if (const auto* v = node.as_integer()) return std::to_string(v->get());
  if (const auto* v = node.as_floating_point()) return fmt::format("{}", v->get());
  if (const auto* v = node.as_boolean()) return v->get() ? "true" : "false";
  return std::nullopt;
}

std::string as_written(const toml::node& node) {
  if (const auto* v = node.as_string()) return toml_string(v->get());
  std::ostringstream out;
  node.visit([&out](const auto& v) { out << v; });
  return out.str();
}

// Reads the TOML file `path` into `o`, each key through its setting's row. Returns why it
// cannot be used ("FILE:LINE: ..."), or "".
std::string read_config_file(const std::string& path, Options& o, Origins& origins) {
  std::ifstream in(path);
  if (!in) {
    return fmt::format("cannot read the config file {}: {}; give a readable file to --config", path,
                       std::strerror(errno));
  }
  toml::table table;
  try {
    table = toml::parse(in, path);
  } catch (const toml::parse_error& e) {
    return fmt::format("{}:{}:{}: {} (the file is TOML: key = \"value\", one per line)", path,
                       e.source().begin.line, e.source().begin.column, e.description());
  }
  for (auto&& [key, node] : table) {
    const std::string where = fmt::format("{}:{}", path, key.source().begin.line);
    if (node.is_table()) {
      return fmt::format("{}: [{}] is a section; printerfacts reads keys at the top level only",
                         where, key.str());
    }
    const Setting* s = find_setting(key.str());
    if (s == nullptr) {
      if (std::find(kModes.begin(), kModes.end(), key.str()) != kModes.end()) {
        return fmt::format("{}: \"{}\" is given on the command line, not in a config file", where,
                           key.str());
      }
      const std::string_view near = nearest_name(key.str());
      return fmt::format("{}: unknown setting \"{}\"{}", where, key.str(),
                         near.empty() ? std::string("; printerfacts --help lists them")
                                      : fmt::format("; did you mean \"{}\"?", near));
    }
    origins[std::string(s->name)] = where;
    if (const auto* list = node.as_array()) {
      if (!s->repeatable) {
        return fmt::format("{}: {} takes one value, not a list (expected {})", where, s->name,
                           s->expected);
      }
      s->clear(o);
      for (const auto& item : *list) {
        const auto text = scalar_text(item);
        std::string why;
        if (!text || !s->set(o, *text, &why)) {
          return bad_value(where + ": ", *s, "= " + as_written(item), why) +
                 fmt::format(" (in the list {})", as_written(node));
        }
      }
      continue;
    }
    const auto text = scalar_text(node);  // a scalar: not a table, not an array
    if (s->repeatable) s->clear(o);
    std::string why;
    if (!text || !s->set(o, *text, &why)) {
      return bad_value(where + ": ", *s, "= " + as_written(node), why);
    }
  }
  return {};
}

}  // namespace

CommandLine parse_command_line(int argc, const char* const* argv, const GetEnv& getenv) {
  CLI::App app{"printerfacts: random printer facts over HTTP, on a Unix domain socket.",
               "printerfacts"};
  app.set_version_flag(
      "--version", std::string("printerfacts ") + kBuildVersion + " (commit " + kBuildCommit + ")");
  app.footer(footer());
  app.get_formatter()->column_width(34);
  // Unknown flags are ours to report, with the nearest known one.
  app.allow_extras();

  // Each setting's flag comes from its row. Values are collected as text and set through the
  // row afterwards, after the config file's, so that flags win and every error is worded by us.
  const auto table = settings();
  std::vector<std::vector<std::string>> given(table.size());
  std::vector<CLI::Option*> flags(table.size());
  const std::unique_ptr<bool[]> switched(new bool[table.size()]());  // on/off flags
  for (std::size_t i = 0; i < table.size(); ++i) {
    const Setting& s = table[i];
    const std::string flag = "--" + std::string(s.name);
    const std::string help = std::string(s.help) + (s.repeatable ? "; repeatable" : "") +
                             (s.reloadable ? " (reloadable)" : "");
    if (s.kind == Setting::Kind::boolean) {
      flags[i] = app.add_flag(flag, switched[i], help);  // --NAME, or --NAME=false
      continue;
    }
    flags[i] = app.add_option(flag, given[i], help)
                   ->type_name(std::string(s.value_name))
                   ->expected(1)
                   ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
                   ->default_str(s.default_for_docs());
  }
  Options o;
  std::string config_file;
  app.add_option("--config", config_file,
                 "read settings from FILE (TOML, one `name = value` per setting); SIGHUP re-reads "
                 "it")
      ->type_name("FILE");
  app.add_flag("--check", o.check,
               "check the configuration as a start would, changing nothing, and exit (0: valid)");
  app.add_flag("--check-reload", o.check_reload,
               "check only what a reload (SIGHUP) reads, and exit (for ExecReload=)");
  app.add_flag("--print-config", o.print_config,
               "print every effective setting and where it came from (TOML), and exit");
  app.add_flag("--healthcheck", o.healthcheck,
               "ask the running server on the listen address for /healthz; exit 0 if healthy");
  std::vector<std::string> sub_listen;
  CLI::App* healthcheck = app.add_subcommand(
      "healthcheck", "ask a running server for /healthz; exit 0 if it answers 200, else 1");
  healthcheck->add_option("--listen", sub_listen, "the server's address (default: as for serving)")
      ->type_name("ADDR");
  CLI::App* doctor = app.add_subcommand(
      "doctor",
      "why can't USER (nginx) connect? walk the socket's path as USER, check its mode and group, "
      "connect as USER (as root), check the running nginx; exit 0 if USER gets an answer");
  doctor->add_option("--as", o.doctor_as, "the user who must be able to connect, e.g. www-data")
      ->type_name("USER")
      ->required();
  doctor->add_option("--listen", sub_listen, "the socket (default: as for serving)")
      ->type_name("ADDR");
  doctor
      ->add_option("--nginx-pid", o.doctor_nginx_pid,
                   "the nginx master to check (default: /run/nginx.pid, else every nginx)")
      ->type_name("PID");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return CommandLine{std::nullopt, app.exit(e), {}, {}};
    return CommandLine{std::nullopt, exit_code::usage, e.what(), {}};
  }
  if (const auto extra = app.remaining(true); !extra.empty()) {
    const std::string& first = extra.front();
    if (first.rfind("--", 0) != 0) {
      return CommandLine{
          std::nullopt, exit_code::usage, fmt::format("unexpected argument \"{}\"", first), {}};
    }
    const std::string name = first.substr(2, first.find('=') - 2);
    const std::string_view near = nearest_name(name, kModes);
    return CommandLine{
        std::nullopt,
        exit_code::usage,
        fmt::format("unknown flag --{}{}", name,
                    near.empty() ? std::string() : fmt::format("; did you mean --{}?", near)),
        {}};
  }
  o.healthcheck = o.healthcheck || healthcheck->parsed();
  o.doctor = doctor->parsed();

  Origins origins;
  for (const Setting& s : table) origins[std::string(s.name)] = "default";
  // The file first: what the command line says then replaces it.
  if (!config_file.empty()) {
    o.config_file = config_file;
    if (std::string error = read_config_file(config_file, o, origins); !error.empty()) {
      return CommandLine{std::nullopt, exit_code::config, std::move(error), {}};
    }
  }
  for (std::size_t i = 0; i < table.size() && !sub_listen.empty(); ++i) {
    if (table[i].name == "listen")
      given[i].insert(given[i].end(), sub_listen.begin(), sub_listen.end());
  }
  for (std::size_t i = 0; i < table.size(); ++i) {
    const Setting& s = table[i];
    if (s.kind == Setting::Kind::boolean && flags[i]->count() > 0)
      given[i].push_back(switched[i] ? "true" : "false");
    if (given[i].empty()) continue;
    origins[std::string(s.name)] = "command line";
    if (s.repeatable) s.clear(o);
    for (const auto& value : given[i]) {
      std::string why;
      if (!s.set(o, value, &why)) {
        return CommandLine{
            std::nullopt, exit_code::usage, bad_value("--", s, toml_string(value), why), {}};
      }
    }
  }
  // The environment, for what neither gave.
  for (const Setting& s : table) {
    if (s.from_environment == nullptr || origins[std::string(s.name)] != "default") continue;
    const auto value = s.from_environment(getenv);
    if (!value) continue;
    const auto& [text, variable] = *value;
    std::string why;
    if (!s.set(o, text, &why)) {
      return CommandLine{std::nullopt,
                         exit_code::config,
                         bad_value("environment " + variable + ": ", s, toml_string(text), why),
                         {}};
    }
    if (!variable.empty()) origins[std::string(s.name)] = "environment " + variable;
  }
  return CommandLine{std::move(o), exit_code::ok, {}, std::move(origins)};
}

std::string render_config(const Options& options, const Origins& origins) {
  std::string out = "# printerfacts: every setting in effect, and where it came from\n";
  for (const Setting& s : settings()) {
    const auto values = s.get(options);
    const auto origin = origins.find(s.name);
    const std::string comment =
        fmt::format("  # {}{}", origin == origins.end() ? "default" : origin->second,
                    s.reloadable ? ", reloadable" : "");
    const auto render = [&s](const std::string& v) {
      return s.kind == Setting::Kind::text ? toml_string(v) : v;
    };
    if (s.repeatable) {
      std::string items;
      for (const auto& v : values) items += (items.empty() ? "" : ", ") + render(v);
      out += fmt::format("{} = [{}]{}\n", s.name, items, comment);
    } else if (values.empty()) {
      out += fmt::format("# {} is not set{}\n", s.name, comment);
    } else {
      out += fmt::format("{} = {}{}\n", s.name, render(values.front()), comment);
    }
  }
  return out;
}

}  // namespace printerfacts
