#include "config/options.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <grp.h>
#include <pwd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
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
  if (o.max_connections_per_uid > o.max_connections) {
    throw StartupError(fmt::format(
        "--max-connections-per-uid {} is above --max-connections {}: give at most that (or 0 "
        "for no per-user limit)",
        o.max_connections_per_uid, o.max_connections));
  }
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
  ResolvedIds ids;
  if (o.socket_group) ids.socket_group = resolve_group(*o.socket_group, "socket-group");
  if (o.metrics_socket_group)
    ids.metrics_socket_group = resolve_group(*o.metrics_socket_group, "metrics-socket-group");
  ids.site = validate(o.site);
  return ids;
}

SiteIds validate(const SiteOptions& site) {
  if (std::find_if(std::begin(kLogLevels), std::end(kLogLevels), [&](const char* level) {
        return site.log_level == level;
      }) == std::end(kLogLevels)) {
    throw StartupError(fmt::format("--log-level {}: must be one of {}", site.log_level,
                                   fmt::join(kLogLevels, ", ")));
  }
  SiteIds ids;
  for (const auto& u : site.allow_uid) {
    ids.allow_uids.push_back(resolve_peer_id(IdKind::user, u, "allow-uid"));
  }
  for (const auto& g : site.allow_gid) {
    ids.allow_gids.push_back(resolve_peer_id(IdKind::group, g, "allow-gid"));
  }
  ids.trusted = resolve_trusted_proxies(site.trust_forwarded, "trust-forwarded");
  ids.proxy_senders = resolve_trusted_proxies(site.proxy_protocol, "proxy-protocol");
  const auto header = parse_client_header(site.client_header);
  if (!header) {
    throw StartupError("--client-header " + site.client_header +
                       ": must be X-Forwarded-For, X-Real-IP or Forwarded");
  }
  ids.client_header = *header;
  return ids;
}

unsigned worker_threads(const Options& options) {
  return options.threads != 0 ? options.threads : std::max(1u, std::thread::hardware_concurrency());
}

namespace {

// The kernel's overflow uid or gid (/proc/sys/kernel/overflowuid, overflowgid; 65534 unless
// changed): what a process in a user namespace without a mapping for its own ID shows to us.
unsigned overflow_id(IdKind kind) {
  const char* path =
      kind == IdKind::user ? "/proc/sys/kernel/overflowuid" : "/proc/sys/kernel/overflowgid";
  unsigned id = 65534;
  if (std::FILE* f = std::fopen(path, "r")) {
    if (std::fscanf(f, "%u", &id) != 1) id = 65534;
    std::fclose(f);
  }
  return id;
}

}  // namespace

unsigned resolve_peer_id(IdKind kind, const std::string& name, std::string_view flag) {
  const unsigned id = resolve_id(kind, name, flag);
  // Security: the overflow ID is not a user. Every peer whose own ID has no mapping in our
  // user namespace reports it (any container's root, through a bind-mounted socket, say), so
  // allowing or trusting it admits all of them at once, whoever they are.
  if (id == overflow_id(kind)) {
    const char* what = kind == IdKind::user ? "uid" : "gid";
    throw StartupError(fmt::format(
        "--{} {}: {} {} is the kernel's overflow {}, which every peer from a user namespace "
        "without a mapping for its own {} reports; it names no one {}. Name the real {}",
        flag, name, what, id, what, what, kind == IdKind::user ? "user" : "group",
        kind == IdKind::user ? "user" : "group"));
  }
  return id;
}

unsigned resolve_id(IdKind kind, const std::string& name, std::string_view flag) {
  std::vector<char> buffer(16384);
  if (kind == IdKind::user) {
    struct passwd entry {};
    struct passwd* found = nullptr;
    if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) == 0 && found)
      return found->pw_uid;
  } else {
    struct group entry {};
    struct group* found = nullptr;
    if (::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) == 0 && found)
      return found->gr_gid;
  }
  // Not a name: a number, taken as it is (an ID need not have an entry in /etc/passwd).
  unsigned long id = 0;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
  if (!name.empty() && ec == std::errc() && end == name.data() + name.size() && id < 0xffffffffUL)
    return static_cast<unsigned>(id);
  throw StartupError(
      fmt::format("--{}: no {} named \"{}\"", flag, kind == IdKind::user ? "user" : "group", name));
}

}  // namespace printerfacts
