#include "config/options.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <charconv>
#include <thread>
#include <vector>

#include "util/startup_error.hpp"

namespace printerfacts {

ResolvedIds validate(const Options& o) {
  if (o.listen.empty()) throw StartupError("no listen address configured");
  if (o.socket_mode > 0777)
    throw StartupError("--socket-mode must be an octal mode from 0 to 0777");
  if ((o.socket_mode & 0200) == 0) {
    // connect() on a Unix socket needs write permission on the file; without it even the
    // owner (and the group) could not reach the server.
    throw StartupError("--socket-mode lacks the owner write bit; nobody could connect");
  }
  if (o.threads > 1024) throw StartupError("--threads must be from 1 to 1024 (or 0: one per CPU)");
  // A socket any local user may open defeats the point of a Unix socket; require saying so.
  if (!o.allow_world && ((o.socket_mode | o.metrics_socket_mode) & 0007) != 0) {
    throw StartupError(fmt::format(
        "socket mode {:04o} lets every local user connect; use a group (--socket-group) or pass "
        "--allow-world",
        (o.socket_mode & 0007) ? o.socket_mode : o.metrics_socket_mode));
  }
  if (o.max_connections < 1) throw StartupError("--max-connections must be at least 1");
  if (o.backlog < 1 || o.backlog > 65535) throw StartupError("--backlog must be from 1 to 65535");
  if (o.max_header_size < 1024) throw StartupError("--max-header-size must be at least 1k");
  const auto positive = [](Duration d, const char* flag) {
    if (d.count() <= 0) throw StartupError(std::string(flag) + " must be greater than zero");
  };
  positive(o.header_timeout, "--header-timeout");
  positive(o.idle_timeout, "--idle-timeout");
  positive(o.send_timeout, "--send-timeout");
  positive(o.shutdown_timeout, "--shutdown-timeout");
  for (std::size_t i = 0; i < o.listen.size(); ++i) {
    for (std::size_t j = i + 1; j < o.listen.size(); ++j) {
      if (o.listen[i] == o.listen[j]) {
        throw StartupError("listen address " + o.listen[i].to_string() + " is given twice");
      }
    }
  }
  if ((o.metrics_socket_mode & 0200) == 0)
    throw StartupError("--metrics-socket-mode lacks the owner write bit; nobody could connect");
  for (const auto& m : o.metrics_listen) {
    for (const auto& l : o.listen) {
      if (m == l)
        throw StartupError("listen address " + m.to_string() +
                           " is given for both --listen and --metrics-listen");
    }
  }
  static constexpr const char* kLevels[] = {"trace", "debug",    "info", "warn",
                                            "error", "critical", "off"};
  if (std::find(std::begin(kLevels), std::end(kLevels), o.log_level) == std::end(kLevels)) {
    throw StartupError("--log-level must be one of trace, debug, info, warn, error, critical, off");
  }
  ResolvedIds ids;
  if (o.socket_group) ids.socket_group = resolve_group(*o.socket_group);
  if (o.metrics_socket_group) ids.metrics_socket_group = resolve_group(*o.metrics_socket_group);
  for (const auto& u : o.allow_uid) ids.allow_uids.push_back(resolve_user(u));
  for (const auto& g : o.allow_gid) ids.allow_gids.push_back(resolve_group(g));
  ids.trusted = resolve_trusted_proxies(o.trust_forwarded);
  const auto header = parse_client_header(o.client_header);
  if (!header) {
    throw StartupError("--client-header " + o.client_header +
                       ": must be X-Forwarded-For, X-Real-IP or Forwarded");
  }
  ids.client_header = *header;
  return ids;
}

unsigned worker_threads(const Options& options) {
  return options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
}

std::vector<std::string> restart_only_changes(const Options& running, const Options& reread) {
  std::vector<std::string> changed;
  const auto check = [&](const char* flag, bool same) {
    if (!same) changed.emplace_back(flag);
  };
  const Options& a = running;
  const Options& b = reread;
  check("listen", a.listen == b.listen);
  check("socket-mode", a.socket_mode == b.socket_mode);
  check("allow-world", a.allow_world == b.allow_world);
  check("socket-group", a.socket_group == b.socket_group);
  check("backlog", a.backlog == b.backlog);
  check("max-connections", a.max_connections == b.max_connections);
  check("threads", a.threads == b.threads);
  check("max-header-size", a.max_header_size == b.max_header_size);
  check("max-body-size", a.max_body_size == b.max_body_size);
  check("header-timeout", a.header_timeout == b.header_timeout);
  check("idle-timeout", a.idle_timeout == b.idle_timeout);
  check("send-timeout", a.send_timeout == b.send_timeout);
  check("shutdown-timeout", a.shutdown_timeout == b.shutdown_timeout);
  check("shutdown-delay", a.shutdown_delay == b.shutdown_delay);
  check("access-log", a.access_log == b.access_log);
  check("metrics-listen", a.metrics_listen == b.metrics_listen);
  check("metrics-socket-mode", a.metrics_socket_mode == b.metrics_socket_mode);
  check("metrics-socket-group", a.metrics_socket_group == b.metrics_socket_group);
  check("metrics-on-main", a.metrics_on_main == b.metrics_on_main);
  check("log-format", a.log_format == b.log_format);
  // A new setting needs a line above. Should one be forgotten, its change still shows up here:
  // with every reloadable field made equal, whatever still differs needs a restart.
  Options rest = reread;
  rest.facts_file = running.facts_file;
  rest.static_dir = running.static_dir;
  rest.log_level = running.log_level;
  rest.allow_uid = running.allow_uid;
  rest.allow_gid = running.allow_gid;
  rest.trust_forwarded = running.trust_forwarded;
  rest.client_header = running.client_header;
  rest.config_file = running.config_file;
  if (changed.empty() && !(rest == running)) changed.emplace_back("(an unlisted setting)");
  return changed;
}

uid_t resolve_user(const std::string& user) {
  std::vector<char> buffer(16384);
  struct passwd entry {};
  struct passwd* found = nullptr;
  if (::getpwnam_r(user.c_str(), &entry, buffer.data(), buffer.size(), &found) == 0 && found) {
    return found->pw_uid;
  }
  unsigned long uid = 0;
  const auto [end, ec] = std::from_chars(user.data(), user.data() + user.size(), uid);
  if (!user.empty() && ec == std::errc() && end == user.data() + user.size() &&
      uid < 0xffffffffUL) {
    return static_cast<uid_t>(uid);
  }
  throw StartupError("--allow-uid: no user named \"" + user + "\"");
}

gid_t resolve_group(const std::string& group) {
  std::vector<char> buffer(16384);
  struct group entry {};
  struct group* found = nullptr;
  const int err = ::getgrnam_r(group.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (err == 0 && found != nullptr) return found->gr_gid;

  unsigned long gid = 0;
  const auto [end, ec] = std::from_chars(group.data(), group.data() + group.size(), gid);
  if (!group.empty() && ec == std::errc() && end == group.data() + group.size() &&
      gid < 0xffffffffUL) {
    return static_cast<gid_t>(gid);
  }
  throw StartupError("no group named \"" + group + "\"");
}

}  // namespace printerfacts
