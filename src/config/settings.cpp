#include "config/settings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <limits>
#include <type_traits>

#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

// ---- Where a setting's value lives --------------------------------------------------------

template <class C, class T>
C owner_of(T C::*);
template <class C, class T>
T type_of(T C::*);

template <auto Member>
using Owner = decltype(owner_of(Member));
template <auto Member>
using FieldType = decltype(type_of(Member));

// A member of SiteOptions is reached through Options::site: that is what makes it reloadable.
template <auto Member>
constexpr bool kReloadable = std::is_same_v<Owner<Member>, SiteOptions>;

template <auto Member>
auto& field(Options& o) {
  if constexpr (kReloadable<Member>) {
    return o.site.*Member;
  } else {
    return o.*Member;
  }
}

template <auto Member>
const auto& field(const Options& o) {
  if constexpr (kReloadable<Member>) {
    return o.site.*Member;
  } else {
    return o.*Member;
  }
}

template <class T>
struct IsVector : std::false_type {};
template <class T>
struct IsVector<std::vector<T>> : std::true_type {};

// ---- Codecs: text to a value and back ------------------------------------------------------
// Each has `type`, `kind`, `parse(text, value) -> bool` and `format(value) -> string`. They check
// the form of one value; validate() checks ranges and combinations.

struct Text {
  using type = std::string;
  static constexpr Setting::Kind kind = Setting::Kind::text;
  static bool parse(std::string_view text, type& v) {
    v = text;
    return true;
  }
  static std::string format(const type& v) { return v; }
};

template <class T>
struct Number {
  using type = T;
  static constexpr Setting::Kind kind = Setting::Kind::integer;
  static bool parse(std::string_view text, type& v) {
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    return ec == std::errc() && end == text.data() + text.size();
  }
  static std::string format(const type& v) { return std::to_string(v); }
};

// An on/off setting: a flag without a value on the command line, a boolean in the file.
struct Flag {
  using type = bool;
  static constexpr Setting::Kind kind = Setting::Kind::boolean;
  static bool parse(std::string_view text, type& v) {
    if (text == "true" || text == "on" || text == "yes" || text == "1") {
      v = true;
    } else if (text == "false" || text == "off" || text == "no" || text == "0") {
      v = false;
    } else {
      return false;
    }
    return true;
  }
  static std::string format(const type& v) { return v ? "true" : "false"; }
};

// An on/off setting that takes its value as a word ("--access-log off").
struct OnOff : Flag {
  static constexpr Setting::Kind kind = Setting::Kind::text;
  static std::string format(const type& v) { return v ? "on" : "off"; }
};

struct Mode {
  using type = mode_t;
  static constexpr Setting::Kind kind = Setting::Kind::text;  // "0660": octal, so a string
  static bool parse(std::string_view text, type& v) {
    if (text.empty() || text.size() > 4) return false;
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 8);
    if (ec != std::errc() || end != text.data() + text.size()) return false;
    v = static_cast<mode_t>(value);
    return true;
  }
  static std::string format(const type& v) { return fmt::format("{:04o}", v); }
};

// A value the project already parses and prints (config/duration.hpp).
template <class T, std::optional<T> (*Parse)(std::string_view), std::string (*Format)(T)>
struct ParsedBy {
  using type = T;
  static constexpr Setting::Kind kind = Setting::Kind::text;
  static bool parse(std::string_view text, type& v) {
    const auto parsed = Parse(text);
    if (parsed) v = *parsed;
    return parsed.has_value();
  }
  static std::string format(const type& v) { return Format(v); }
};
using Size = ParsedBy<std::uint64_t, parse_size, format_size>;
using Time = ParsedBy<Duration, parse_duration, format_duration>;

struct Address {
  using type = ListenAddress;
  static constexpr Setting::Kind kind = Setting::Kind::text;
  static bool parse(std::string_view text, type& v, std::string* why) {
    try {
      v = parse_listen_address(text);
      return true;
    } catch (const StartupError& e) {
      // "invalid listen address \"X\": port out of range": the reason, after the address.
      const std::string_view what = e.what();
      const auto reason = what.find("\": ");
      if (why) *why = what.substr(reason == std::string_view::npos ? 0 : reason + 3);
      return false;
    }
  }
  static std::string format(const type& v) { return v.to_string(); }
};

struct LogFormat {
  using type = Options::LogFormat;
  static constexpr Setting::Kind kind = Setting::Kind::text;
  static bool parse(std::string_view text, type& v) {
    if (text == "text") {
      v = type::text;
    } else if (text == "json") {
      v = type::json;
    } else {
      return false;
    }
    return true;
  }
  static std::string format(const type& v) { return v == type::json ? "json" : "text"; }
};

// "auto" (none: as --log-format) or one of the formats.
struct AccessLogFormatChoice {
  using type = std::optional<AccessLogFormat>;
  static constexpr Setting::Kind kind = Setting::Kind::text;
  static constexpr std::array<std::pair<std::string_view, AccessLogFormat>, 4> kNames = {{
      {"text", AccessLogFormat::text},
      {"json", AccessLogFormat::json},
      {"combined", AccessLogFormat::combined},
      {"logfmt", AccessLogFormat::logfmt},
  }};
  static bool parse(std::string_view text, type& v) {
    if (text == "auto") {
      v.reset();
      return true;
    }
    for (const auto& [name, value] : kNames) {
      if (text == name) {
        v = value;
        return true;
      }
    }
    return false;
  }
  static std::string format(const type& v) {
    for (const auto& [name, value] : kNames) {
      if (v == value) return std::string(name);
    }
    return "auto";
  }
};

struct IoBackendChoice {
  using type = Options::IoBackend;
  static constexpr Setting::Kind kind = Setting::Kind::text;
  static bool parse(std::string_view text, type& v) {
    if (text == "auto") {
      v = type::automatic;
    } else if (text == "io_uring") {
      v = type::io_uring;
    } else if (text == "epoll") {
      v = type::epoll;
    } else {
      return false;
    }
    return true;
  }
  static std::string format(const type& v) {
    return v == type::io_uring ? "io_uring" : v == type::epoll ? "epoll" : "auto";
  }
};

struct LogLevel : Text {
  static bool parse(std::string_view text, type& v) {
    if (std::find(std::begin(kLogLevels), std::end(kLogLevels), text) == std::end(kLogLevels))
      return false;
    v = text;
    return true;
  }
};

struct HeaderName : Text {
  static bool parse(std::string_view text, type& v) {
    if (!parse_client_header(std::string(text))) return false;
    v = text;
    return true;
  }
};

// ---- One row -------------------------------------------------------------------------------

template <auto Member, class Codec>
bool set_value(Options& o, std::string_view text, std::string* why) {
  using T = FieldType<Member>;
  auto& value = field<Member>(o);
  typename Codec::type parsed{};
  bool ok;
  if constexpr (requires { Codec::parse(text, parsed, why); }) {
    ok = Codec::parse(text, parsed, why);
  } else {
    ok = Codec::parse(text, parsed);
  }
  if (!ok) return false;
  if constexpr (IsVector<T>::value) {
    value.push_back(std::move(parsed));
  } else {
    value = std::move(parsed);  // an optional<string> too
  }
  return true;
}

template <auto Member, class Codec>
std::vector<std::string> get_value(const Options& o) {
  using T = FieldType<Member>;
  const auto& value = field<Member>(o);
  std::vector<std::string> out;
  if constexpr (IsVector<T>::value) {
    for (const auto& v : value) out.push_back(Codec::format(v));
  } else if constexpr (std::is_same_v<T, std::optional<std::string>>) {
    if (value) out.push_back(*value);
  } else {
    out.push_back(Codec::format(value));
  }
  return out;
}

template <auto Member>
void clear_value(Options& o) {
  if constexpr (IsVector<FieldType<Member>>::value) {
    field<Member>(o).clear();
  } else {
    static const Options defaults;
    field<Member>(o) = field<Member>(defaults);
  }
}

template <auto Member>
bool same_value(const Options& a, const Options& b) {
  return field<Member>(a) == field<Member>(b);
}

template <auto Member, class Codec>
constexpr Setting row(std::string_view name, std::string_view value_name, std::string_view help,
                      std::string_view expected) {
  return Setting{
      .name = name,
      .value_name = value_name,
      .help = help,
      .kind = Codec::kind,
      .expected = expected,
      .repeatable = IsVector<FieldType<Member>>::value,
      .reloadable = kReloadable<Member>,
      .env_help = {},
      .default_doc = {},
      .set = &set_value<Member, Codec>,
      .get = &get_value<Member, Codec>,
      .clear = &clear_value<Member>,
      .same = &same_value<Member>,
      .from_environment = nullptr,
  };
}

// --listen with nothing given: $SOCKPATH, else tcp:[::]:$PORT (3000 without PORT either), as
// the twelve-factor convention and the previous releases have it.
std::optional<std::pair<std::string, std::string>> listen_from_environment(const GetEnv& getenv) {
  if (const char* sock = getenv("SOCKPATH"); sock != nullptr && *sock != '\0') {
    return std::pair{std::string("unix:") + sock, std::string("SOCKPATH")};
  }
  if (const char* port = getenv("PORT"); port != nullptr && *port != '\0') {
    return std::pair{std::string("tcp:[::]:") + port, std::string("PORT")};
  }
  return std::pair{std::string("tcp:[::]:3000"), std::string()};
}

// --io-backend with nothing given: $PRINTERFACTS_IO_BACKEND (for a container's environment).
std::optional<std::pair<std::string, std::string>> io_backend_from_environment(
    const GetEnv& getenv) {
  if (const char* v = getenv("PRINTERFACTS_IO_BACKEND"); v != nullptr && *v != '\0') {
    return std::pair{std::string(v), std::string("PRINTERFACTS_IO_BACKEND")};
  }
  return std::nullopt;
}

Setting described(Setting s, std::string_view default_doc) {
  s.default_doc = default_doc;
  return s;
}

Setting with_environment(Setting s, std::string_view env_help,
                         decltype(Setting::from_environment) from) {
  s.env_help = env_help;
  s.from_environment = from;
  return s;
}

// The table. Order is --help's order. A setting whose field is in SiteOptions is reloadable.
const std::vector<Setting>& table() {
  static const std::vector<Setting> rows = {
      described(with_environment(
                    row<&Options::listen, Address>(
                        "listen", "ADDR", "unix:PATH or tcp:HOST:PORT",
                        "unix:PATH or tcp:HOST:PORT, such as unix:/run/printerfacts/http.sock"),
                    "SOCKPATH, PORT", &listen_from_environment),
                "unix:$SOCKPATH, else tcp:[::]:$PORT (3000)"),
      row<&Options::socket_mode, Mode>("socket-mode", "MODE",
                                       "octal permission bits of created Unix sockets",
                                       "an octal mode such as 0660"),
      row<&Options::allow_world, Flag>(
          "allow-world", "", "permit a socket mode that lets every local user connect (0666)",
          "true or false"),
      described(row<&Options::socket_group, Text>("socket-group", "GROUP",
                                                  "group (name or GID) of created Unix sockets",
                                                  "a group name or GID such as www-data"),
                "the process's group"),
      row<&Options::socket_guard, OnOff>(
          "socket-guard", "on|off",
          "re-create a created Unix socket whose file is deleted; drain when a successor takes "
          "its path",
          "on or off"),
      row<&Options::takeover, Flag>(
          "takeover", "",
          "take the Unix socket paths over from a running instance (it drains and exits)",
          "true or false"),
      row<&Options::fd_store, Flag>(
          "fd-store", "",
          "keep created Unix sockets in systemd's file-descriptor store across restarts",
          "true or false"),
      row<&Options::backlog, Number<int>>("backlog", "N", "listen backlog of created sockets",
                                          "a whole number such as 4096"),
      row<&Options::max_connections, Number<unsigned>>(
          "max-connections", "N",
          "open connections kept at most, all threads together; more are closed at once",
          "a whole number such as 16384"),
      row<&Options::max_connections_per_uid, Number<unsigned>>(
          "max-connections-per-uid", "N",
          "open connections one Unix-socket peer user may hold; more are closed at once (0: no "
          "limit)",
          "a whole number such as 1024 (0: no limit)"),
      row<&Options::threads, Number<unsigned>>("threads", "N", "worker threads; 0: one per CPU",
                                               "a whole number such as 4 (0: one per CPU)"),
      with_environment(
          row<&Options::io_backend, IoBackendChoice>(
              "io-backend", "auto|io_uring|epoll",
              "event loop of the workers: io_uring where the kernel and sandbox allow it, else "
              "epoll",
              "auto, io_uring or epoll"),
          "PRINTERFACTS_IO_BACKEND", &io_backend_from_environment),
      described(row<&SiteOptions::facts_file, Text>("facts-file", "FILE",
                                                    "load facts from FILE, one per line (UTF-8)",
                                                    "a path such as /etc/printerfacts/facts.txt"),
                "the built-in facts"),
      described(row<&SiteOptions::static_dir, Text>(
                    "static-dir", "DIR", "serve /static/ from DIR instead of the built-in assets",
                    "a directory such as /srv/printerfacts/static"),
                "the built-in assets"),
      row<&Options::max_header_size, Size>(
          "max-header-size", "SIZE", "limit on request line plus headers", "a size such as 8k"),
      row<&Options::max_body_size, Size>("max-body-size", "SIZE",
                                         "limit on a request body (no route takes one)",
                                         "a size such as 64k"),
      row<&Options::header_timeout, Time>("header-timeout", "TIME",
                                          "time to receive a whole request",
                                          "a duration such as 10s or 1m30s"),
      row<&Options::idle_timeout, Time>("idle-timeout", "TIME",
                                        "time a keep-alive connection may stay idle",
                                        "a duration such as 60s or 1m30s"),
      row<&Options::send_timeout, Time>("send-timeout", "TIME", "time to write one response",
                                        "a duration such as 60s or 1m30s"),
      row<&Options::shutdown_timeout, Time>("shutdown-timeout", "TIME",
                                            "time in-flight requests get to finish after SIGTERM",
                                            "a duration such as 10s or 1m30s"),
      row<&Options::shutdown_delay, Time>(
          "shutdown-delay", "TIME",
          "after SIGTERM, keep serving this long with /healthz answering 503 (lame duck)",
          "a duration such as 5s"),
      row<&Options::access_log, OnOff>("access-log", "on|off", "one line per request on stdout",
                                       "on or off"),
      row<&Options::access_log_format, AccessLogFormatChoice>(
          "access-log-format", "auto|text|json|combined|logfmt",
          "access log lines: as --log-format (auto), our text line, JSON with OpenTelemetry's "
          "HTTP names, Combined Log Format, or logfmt",
          "auto, text, json, combined or logfmt"),
      described(
          row<&Options::access_log_file, Text>(
              "access-log-file", "FILE",
              "write the access log to FILE (appending) instead of stdout; SIGUSR1 reopens it",
              "a path such as /var/log/printerfacts/access.log"),
          "stdout"),
      described(row<&Options::metrics_listen, Address>(
                    "metrics-listen", "ADDR",
                    "serve only /metrics and /healthz on ADDR (unix:PATH or tcp:HOST:PORT)",
                    "unix:PATH or tcp:HOST:PORT, such as unix:/run/printerfacts/metrics.sock"),
                "none"),
      row<&Options::metrics_socket_mode, Mode>("metrics-socket-mode", "MODE",
                                               "octal permission bits of metrics Unix sockets",
                                               "an octal mode such as 0660"),
      described(row<&Options::metrics_socket_group, Text>("metrics-socket-group", "GROUP",
                                                          "group of metrics Unix sockets",
                                                          "a group name or GID such as prometheus"),
                "the process's group"),
      row<&Options::metrics_on_main, Flag>(
          "metrics-on-main", "", "also serve /metrics on the main listeners", "true or false"),
      described(row<&SiteOptions::allow_uid, Text>(
                    "allow-uid", "USER",
                    "only Unix-socket peers running as this user (name or UID) may talk",
                    "a user name or UID such as www-data"),
                "anyone the socket's mode admits"),
      described(row<&SiteOptions::allow_gid, Text>(
                    "allow-gid", "GROUP",
                    "only Unix-socket peers with this primary group (name or GID) may talk",
                    "a group name or GID such as www-data"),
                "anyone the socket's mode admits"),
      described(
          row<&SiteOptions::trust_forwarded, Text>(
              "trust-forwarded", "PEER",
              "believe the client header of peers matching uid:USER, gid:GROUP (Unix socket) or "
              "tcp:CIDR",
              "uid:USER, gid:GROUP or tcp:CIDR, such as uid:www-data"),
          "nobody"),
      described(row<&SiteOptions::proxy_protocol, Text>(
                    "proxy-protocol", "PEER",
                    "peers matching uid:USER, gid:GROUP or tcp:CIDR must send a PROXY protocol "
                    "header (v1 or v2); its source is the client",
                    "uid:USER, gid:GROUP or tcp:CIDR, such as uid:haproxy"),
                "nobody"),
      row<&SiteOptions::client_header, HeaderName>(
          "client-header", "NAME",
          "the header trusted peers name the client in: X-Forwarded-For, X-Real-IP or "
          "Forwarded",
          "X-Forwarded-For, X-Real-IP or Forwarded"),
      row<&Options::log_format, LogFormat>("log-format", "text|json",
                                           "access log and diagnostics as text or JSON lines",
                                           "text or json"),
      row<&SiteOptions::log_level, LogLevel>(
          "log-level", "LEVEL",
          "least severe diagnostic printed: trace, debug, info, warn (or warning), error, "
          "critical, off",
          "trace, debug, info, warn, warning, error, critical or off"),
  };
  return rows;
}

}  // namespace

std::string Setting::default_text() const {
  const auto values = get(Options{});
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : " ") + v;
  return out;
}

std::string Setting::default_for_docs() const {
  const std::string text = default_text();
  return text.empty() ? std::string(default_doc) : text;
}

std::span<const Setting> settings() {
  return table();
}

const Setting* find_setting(std::string_view name) {
  for (const Setting& s : table()) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Damerau-Levenshtein, optimal string alignment: three rows suffice.
  std::vector<std::size_t> before(b.size() + 1), previous(b.size() + 1), current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        current[j] = std::min(current[j], before[j - 2] + 1);
    }
    before.swap(previous);
    previous.swap(current);
  }
  return previous[b.size()];
}

std::string_view nearest_name(std::string_view name, std::span<const std::string_view> extra) {
  std::string_view best;
  std::size_t best_distance = std::max<std::size_t>(2, name.size() / 3) + 1;
  const auto consider = [&](std::string_view candidate) {
    const std::size_t d = edit_distance(name, candidate);
    if (d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  };
  for (const Setting& s : table()) consider(s.name);
  for (const auto e : extra) consider(e);
  return best;
}

std::vector<std::string> restart_only_changes(const Options& running, const Options& reread) {
  std::vector<std::string> changed;
  for (const Setting& s : table()) {
    if (!s.reloadable && !s.same(running, reread)) changed.emplace_back(s.name);
  }
  return changed;
}

}  // namespace printerfacts
