#include "listeners/listener_set.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "listeners/systemd.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

// "unix:PATH" or "tcp:IP:PORT" for a bound socket, as getsockname() reports it.
std::string describe_socket(int fd, bool& is_unix) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  is_unix = false;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
    return fmt::format("fd:{}", fd);
  if (ss.ss_family == AF_UNIX) {
    is_unix = true;
    const auto* un = reinterpret_cast<const sockaddr_un*>(&ss);
    const auto n =
        len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
    std::string path(un->sun_path, ::strnlen(un->sun_path, n));
    return "unix:" + (path.empty() ? std::string("(unnamed)") : path);
  }
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
    return fmt::format("tcp:[{}]:{}", host, ntohs(in6->sin6_port));
  }
  const auto* in4 = reinterpret_cast<const sockaddr_in*>(&ss);
  ::inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
  return fmt::format("tcp:{}:{}", host, ntohs(in4->sin_port));
}

// A TCP socket bound to `a`, not yet listening.
UniqueFd bind_tcp(const ListenAddress& a) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(a.port);
  if (const int rc = ::getaddrinfo(a.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    throw StartupError("cannot resolve the host of " + a.to_string() + ": " + ::gai_strerror(rc) +
                       "; give an IP address or a name that resolves");
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(found, ::freeaddrinfo);

  UniqueFd owned(::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int fd = owned.get();
  if (fd < 0) throw errno_error("socket() for " + a.to_string(), errno);
  const auto fail = [&](const char* what) {
    throw errno_error(what + (" " + a.to_string()), errno);
  };
  const int on = 1, off = 0;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) fail("SO_REUSEADDR on");
  // "[::]" serves IPv4 clients too (as ::ffff:a.b.c.d) whatever net.ipv6.bindv6only says.
  if (found->ai_family == AF_INET6 &&
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) {
    fail("IPV6_V6ONLY off on");
  }
  if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
    const int err = errno;
    if (err == EADDRINUSE) {
      throw StartupError(fmt::format("cannot listen on {}: the port is in use by another process "
                                     "(ss -ltnp 'sport = :{}' shows which); stop it or choose "
                                     "another port",
                                     a.to_string(), a.port),
                         exit_code::unavailable);
    }
    if (err == EACCES) {
      throw StartupError(fmt::format("cannot listen on {}: ports below 1024 need root or "
                                     "CAP_NET_BIND_SERVICE; choose a port from 1024 up",
                                     a.to_string()),
                         exit_code::no_permission);
    }
    if (err == EADDRNOTAVAIL) {
      throw StartupError(
          fmt::format("cannot listen on {}: no network interface has that "
                      "address; use one this machine has, or [::] for all",
                      a.to_string()));
    }
    errno = err;
    fail("cannot bind");
  }
  return owned;
}

UniqueFd open_tcp(const ListenAddress& a, int backlog) {
  UniqueFd owned = bind_tcp(a);
  if (::listen(owned.get(), backlog) != 0)
    throw errno_error("cannot listen on " + a.to_string(), errno);
  return owned;
}

// Advice, not refusal: places that commonly break deployments. A socket under /tmp can be
// pre-created or swapped by any user, and services with PrivateTmp= each see their own /tmp, so
// nginx would find no socket there. A parent directory the socket's group cannot search makes
// every connect() fail with EACCES however the socket itself is set.
void warn_about_location(const std::string& path, std::optional<gid_t> group) {
  std::string abs = path;
  if (!abs.empty() && abs.front() != '/') {
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) != nullptr) abs = std::string(cwd) + "/" + abs;
  }
  if (abs.rfind("/tmp/", 0) == 0 || abs.rfind("/var/tmp/", 0) == 0) {
    spdlog::warn(
        "socket {} is under a world-writable temporary directory; with PrivateTmp= "
        "nginx sees a different /tmp. Prefer /run/printerfacts/",
        path);
  }
  for (auto slash = abs.rfind('/'); slash != std::string::npos && slash > 0;
       slash = abs.rfind('/', slash - 1)) {
    const std::string dir = abs.substr(0, slash);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) break;
    const bool others = st.st_mode & S_IXOTH;
    const bool via_group = group && st.st_gid == *group && (st.st_mode & S_IXGRP);
    if (!others && !via_group) {
      spdlog::warn(
          "directory {} is not searchable by others{}: clients of {} will get "
          "'Permission denied'",
          dir, group ? " or the socket's group" : "", path);
      break;
    }
  }
}

// A socket handed on by our predecessor (an upgrade) or systemd's fd store, named by
// Listener::handover_name().
struct Inherited {
  UniqueFd fd;
  bool metrics = false;
  bool is_unix = false;
  dev_t dev = 0;
  ino_t ino = 0;
};

std::optional<Inherited> parse_handover_name(const std::string& name) {
  // pf.ROLE.unix.DEV.INO or pf.ROLE.tcp
  unsigned long long dev = 0, ino = 0;
  char role[16] = {}, kind[8] = {};
  int used = 0;
  if (std::sscanf(name.c_str(), "pf.%15[a-z].%7[a-z]%n", role, kind, &used) != 2) {
    return std::nullopt;
  }
  Inherited in;
  const std::string r = role, k = kind;
  if (r != "service" && r != "metrics") return std::nullopt;
  in.metrics = r == "metrics";
  if (k == "tcp" && name.size() == static_cast<std::size_t>(used)) return in;
  if (k != "unix" || std::sscanf(name.c_str() + used, ".%llu.%llu", &dev, &ino) != 2) {
    return std::nullopt;
  }
  in.is_unix = true;
  in.dev = static_cast<dev_t>(dev);
  in.ino = static_cast<ino_t>(ino);
  return in;
}

// Whether inherited socket `in` is the one configured as `a`: a Unix socket bound at the same
// path, or a TCP socket on the same address (any port where the port asked for is 0).
bool same_address(const Inherited& in, const ListenAddress& a) {
  bool is_unix = false;
  const std::string bound = describe_socket(in.fd.get(), is_unix);
  if (a.kind == ListenAddress::Kind::unix_socket) return is_unix && bound == "unix:" + a.path;
  if (is_unix) return false;
  if (a.port == 0) {
    const auto colon = bound.rfind(':');
    return colon != std::string::npos && (bound.substr(0, colon + 1) + "0") == a.to_string();
  }
  return bound == a.to_string();
}

}  // namespace

std::string Listener::handover_name() const {
  if (from_systemd) return systemd_name;
  const char* role = metrics ? "metrics" : "service";
  if (!is_unix || !owned) return fmt::format("pf.{}.tcp", role);
  return fmt::format("pf.{}.unix.{}.{}", role, static_cast<unsigned long long>(owned->dev),
                     static_cast<unsigned long long>(owned->ino));
}

std::size_t ListenerSet::check(const Options& options, const ResolvedIds& ids) {
  // Sockets systemd would pass are its own to create: nothing of ours to check.
  if (systemd::listen_fds_passed()) return 0;
  std::size_t warnings = 0;
  const auto one = [&](const ListenAddress& a, std::optional<gid_t> group) {
    if (a.kind == ListenAddress::Kind::tcp) {
      bind_tcp(a);  // resolved, bound and closed again at once: never listening
      return;
    }
    warn_about_location(a.path, group);
    check_socket_creatable(a.path, group);
    switch (probe_path(a.path)) {
      case ExistingPath::not_socket:
        throw StartupError(a.path +
                           " exists and is not a socket; starting would refuse to "
                           "remove it: move it away or choose another --listen path");
      case ExistingPath::live_socket:
        spdlog::warn("another instance is listening on {}; starting now would fail", a.path);
        ++warnings;
        break;
      default:
        break;
    }
  };
  for (const auto& a : options.listen) one(a, ids.socket_group);
  for (const auto& a : options.metrics_listen) one(a, ids.metrics_socket_group);
  return warnings;
}

ListenerSet ListenerSet::open(const Options& options, const ResolvedIds& ids) {
  ListenerSet set;
  std::vector<Inherited> inherited;
  for (auto& passed : systemd::take_listen_fds()) {
    if (auto in = parse_handover_name(passed.name)) {
      in->fd = std::move(passed.fd);
      inherited.push_back(std::move(*in));
      continue;
    }
    Listener l;
    l.fd = std::move(passed.fd);
    l.from_systemd = true;
    l.metrics = passed.name == "metrics";
    l.systemd_name = passed.name;
    // Never created, chmod-ed or unlinked here: systemd owns the file and its permissions
    // (SocketMode=, SocketGroup=), and keeps the socket across our restarts.
    l.name = describe_socket(l.fd.get(), l.is_unix);
    set.listeners_.push_back(std::move(l));
  }
  if (!set.listeners_.empty()) return set;

  // An inherited socket serves the address it was bound to, if that is still configured: its
  // file is ours (the name says which file, by device and inode). One no longer configured is
  // closed, and its file removed if it is still that very file.
  const auto take_inherited = [&](const ListenAddress& address, bool metrics, Listener& l) -> bool {
    for (auto& in : inherited) {
      if (!in.fd.valid() || in.metrics != metrics || !same_address(in, address)) continue;
      l.fd = std::move(in.fd);
      l.is_unix = in.is_unix;
      l.inherited = true;
      l.name = in.is_unix ? address.to_string() : describe_socket(l.fd.get(), l.is_unix);
      if (in.is_unix) {
        SocketFile file{address.path, in.dev, in.ino, {}};
        struct stat st {};
        if (::lstat(address.path.c_str(), &st) == 0 && st.st_dev == in.dev && st.st_ino == in.ino) {
          file.ctime = st.st_ctim;
        }
        l.owned = std::move(file);
      }
      return true;
    }
    return false;
  };
  const auto add = [&](const ListenAddress& address, bool metrics, mode_t mode,
                       std::optional<gid_t> group) {
    Listener l;
    l.metrics = metrics;
    const UnixSocketOptions how{
        .mode = mode, .group = group, .backlog = options.backlog, .takeover = options.takeover};
    if (address.kind == ListenAddress::Kind::unix_socket) l.created_with = how;
    if (take_inherited(address, metrics, l)) {
      set.listeners_.push_back(std::move(l));
      return;
    }
    if (address.kind == ListenAddress::Kind::unix_socket) {
      warn_about_location(address.path, group);
      BoundUnixSocket bound = bind_unix_socket(address.path, how);
      if (bound.replaced_stale) ++set.stale_replaced_;
      l.fd = std::move(bound.fd);
      l.is_unix = true;
      l.name = address.to_string();
      l.owned = std::move(bound.file);
    } else {
      l.fd = open_tcp(address, options.backlog);
      l.name = describe_socket(l.fd.get(), l.is_unix);
    }
    set.listeners_.push_back(std::move(l));
  };
  for (const auto& a : options.listen) add(a, false, options.socket_mode, ids.socket_group);
  for (const auto& a : options.metrics_listen) {
    add(a, true, options.metrics_socket_mode, ids.metrics_socket_group);
  }
  for (auto& in : inherited) {
    if (!in.fd.valid()) continue;
    bool is_unix = false;
    const std::string name = describe_socket(in.fd.get(), is_unix);
    spdlog::info("closing the inherited socket {}: no longer configured", name);
    if (is_unix) {
      struct stat st {};
      const std::string path = name.substr(5);
      if (::lstat(path.c_str(), &st) == 0) {
        remove_unix_socket(SocketFile{path, in.dev, in.ino, st.st_ctim});
      }
    }
  }
  return set;
}

const Listener& ListenerSet::recreate(std::size_t index) {
  Listener& l = listeners_.at(index);
  const std::string path = l.owned->path;
  UnixSocketOptions how = l.created_with;
  how.takeover = false;  // the path is empty: nothing to take over
  BoundUnixSocket bound = bind_unix_socket(path, how);
  const std::string old_name = l.handover_name();
  l.fd = std::move(bound.fd);
  l.owned = std::move(bound.file);
  l.inherited = false;
  if (l.kept) {
    // The store must hand the next process the socket at the path, not the one deleted.
    systemd::remove_stored_fd(old_name);
    l.kept = systemd::store_fd(l.fd.get(), l.handover_name());
  }
  return l;
}

std::size_t ListenerSet::keep_in_fd_store() {
  std::size_t sent = 0;
  if (!systemd::notify_socket_set()) return 0;
  for (auto& l : listeners_) {
    if (!l.owned) continue;
    // An inherited socket is in the store already (from it, or put there by our predecessor).
    if (!l.inherited && systemd::store_fd(l.fd.get(), l.handover_name())) ++sent;
    l.kept = true;
  }
  return sent;
}

void ListenerSet::disown_files() {
  for (auto& l : listeners_) l.owned.reset();
}

void ListenerSet::remove_files() {
  for (auto& l : listeners_) {
    // A kept socket's file stays for the next process, which takes the socket from the store.
    if (l.owned && !l.kept) remove_unix_socket(*l.owned);
    l.owned.reset();
  }
}

void ListenerSet::close() {
  for (auto& l : listeners_) l.fd.reset();
  remove_files();
  listeners_.clear();
}

}  // namespace printerfacts
