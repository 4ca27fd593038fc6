#include "listeners/unix_socket.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "config/listen_address.hpp"
#include "util/startup_error.hpp"
#include "util/unique_fd.hpp"

namespace printerfacts {
namespace {

sockaddr_un make_address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() > kMaxUnixPathLength) {
    throw StartupError(fmt::format("socket path {} is {} bytes; the limit is {} bytes", path,
                                   path.size(), kMaxUnixPathLength));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

std::string user_description(uid_t uid) {
  std::vector<char> buffer(16384);
  struct passwd entry {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found)
    return fmt::format("{} (uid {})", found->pw_name, uid);
  return fmt::format("uid {}", uid);
}

std::string group_name(gid_t gid) {
  std::vector<char> buffer(16384);
  struct group entry {};
  struct group* found = nullptr;
  if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) == 0 && found)
    return found->gr_name;
  return std::to_string(gid);
}

bool may_set_group(gid_t gid) {
  if (::geteuid() == 0 || ::getegid() == gid) return true;
  const int n = ::getgroups(0, nullptr);
  std::vector<gid_t> groups(static_cast<std::size_t>(std::max(n, 0)));
  const int got = ::getgroups(static_cast<int>(groups.size()), groups.data());
  for (int i = 0; i < got; ++i) {
    if (groups[static_cast<std::size_t>(i)] == gid) return true;
  }
  return false;
}

// Why a socket cannot be created at `path`, in the user's terms: the directory and who we run
// as, never the internal lock file. `err` is what creating a file there failed with.
StartupError cannot_create(const std::string& path, int err) {
  const std::string dir = socket_directory(path);
  if (err == ENOENT || err == ENOTDIR) {
    return StartupError(fmt::format("cannot create the socket {}: the directory {} does not "
                                    "exist; create it (under systemd: RuntimeDirectory=) or "
                                    "choose another --listen path",
                                    path, dir),
                        exit_code::no_input);
  }
  if (err == EACCES || err == EPERM || err == EROFS) {
    return StartupError(
        fmt::format("cannot create the socket {}: the directory {} is not writable by user {}{}; "
                    "make it writable for that user (under systemd: RuntimeDirectory=) or "
                    "choose another --listen path",
                    path, dir, user_description(::geteuid()),
                    err == EROFS ? " (a read-only file system)" : ""),
        exit_code::no_permission);
  }
  return errno_error("cannot create the socket " + path, err);
}

StartupError cannot_set_group(const std::string& path, gid_t gid) {
  const std::string name = group_name(gid);
  const std::string user = user_description(::geteuid());
  return StartupError(
      fmt::format("cannot give the socket {} the group {}: user {} is not a member of it; add it "
                  "(usermod -aG {} USER, or SupplementaryGroups={} in the unit) or choose "
                  "another --socket-group",
                  path, name, user, name, name),
      exit_code::no_permission);
}

// The lock that serialises check-and-bind between instances starting at the same moment: without
// it, two of them could both find a stale socket, and the second would unlink the first one's
// fresh socket. It is held from the probe until listen(), because a socket that is bound but not
// yet listening also refuses connections and would look stale. The lock file is never removed:
// removing it would let a third process lock a different inode under the same name.
UniqueFd take_lock(const std::string& path) {
  const std::string lock_path = path + ".lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (lock.get() < 0) throw cannot_create(path, errno);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      throw errno_error("cannot lock " + lock_path, errno);
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw StartupError("another instance has been starting on " + path +
                             " for 5s; stop it first, or choose another --listen path",
                         exit_code::unavailable);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return lock;
}

}  // namespace

std::string socket_directory(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

void check_socket_creatable(const std::string& path, std::optional<gid_t> group) {
  const std::string dir = socket_directory(path);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw cannot_create(path, errno);
  if (!S_ISDIR(st.st_mode)) throw cannot_create(path, ENOTDIR);
  // The effective IDs decide, as they will for bind() (AT_EACCESS).
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0)
    throw cannot_create(path, errno);
  if (group && !may_set_group(*group)) throw cannot_set_group(path, *group);
}

ExistingPath classify_existing(int lstat_errno, mode_t mode, int connect_errno) {
  if (lstat_errno == ENOENT) return ExistingPath::absent;
  if (lstat_errno != 0) return ExistingPath::unknown;
  if (!S_ISSOCK(mode)) return ExistingPath::not_socket;
  // A full backlog (EAGAIN) still means a live server behind the socket.
  if (connect_errno == 0 || connect_errno == EAGAIN) return ExistingPath::live_socket;
  // ECONNREFUSED is the kernel saying no socket is bound to this file any more: its server
  // exited without removing it. Anything else (EACCES, ...) tells us nothing, so refuse.
  if (connect_errno == ECONNREFUSED) return ExistingPath::stale_socket;
  return ExistingPath::unknown;
}

ExistingPath probe_path(const std::string& path, int* error) {
  int unused = 0;
  int& err = error ? *error : unused;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    err = errno;
    return classify_existing(err, 0, 0);
  }
  if (!S_ISSOCK(st.st_mode)) return classify_existing(0, st.st_mode, 0);
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (probe.get() < 0) {
    err = errno;
    return ExistingPath::unknown;
  }
  const sockaddr_un addr = make_address(path);
  const int rc = ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  err = rc == 0 ? 0 : errno;
  return classify_existing(0, st.st_mode, err);
}

BoundUnixSocket bind_unix_socket(const std::string& path, const UnixSocketOptions& options) {
  (void)make_address(path);  // a path too long fails here, before anything is made
  // Before anything is created: a group the process may not give would fail after bind().
  if (options.group && !may_set_group(*options.group)) throw cannot_set_group(path, *options.group);
  UniqueFd lock = take_lock(path);

  BoundUnixSocket result;
  result.file.path = path;
  int probe_error = 0;
  switch (probe_path(path, &probe_error)) {
    case ExistingPath::absent:
      break;
    case ExistingPath::not_socket:
      throw StartupError(path +
                         " exists and is not a socket; refusing to remove it: move it "
                         "away or choose another --listen path");
    case ExistingPath::live_socket:
      if (options.takeover) break;  // renamed over below: it drains when its guard sees us
      throw StartupError("another instance is listening on " + path +
                             "; stop it first, take it over (--takeover), or choose another "
                             "--listen path",
                         exit_code::unavailable);
    case ExistingPath::unknown:
      throw StartupError(
          errno_message("cannot tell whether " + path + " is a socket in use", probe_error));
    case ExistingPath::stale_socket:
      if (options.takeover) break;  // the rename below replaces it
      // Safe only because we hold the lock: nobody can bind this path between the probe and here.
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        throw errno_error("cannot remove stale socket " + path, errno);
      }
      result.replaced_stale = true;
      break;
  }

  // A takeover binds a name of its own next to the path and renames it over the path once it
  // listens: rename() is atomic, so every connect() finds either the old instance's socket or
  // ours, never nothing (HAProxy's seamless reload does the same). The name is reserved for
  // this (as PATH.lock is), and we hold the lock: one left by a takeover that died is removed,
  // and only if it is a socket.
  const std::string bound_path = options.takeover ? path + ".takeover" : path;
  if (options.takeover) {
    if (bound_path.size() > kMaxUnixPathLength) {
      throw StartupError(
          fmt::format("--takeover binds {} first, {} bytes; the limit is {} bytes: "
                      "choose a shorter --listen path",
                      bound_path, bound_path.size(), kMaxUnixPathLength));
    }
    struct stat left {};
    if (::lstat(bound_path.c_str(), &left) == 0 && S_ISSOCK(left.st_mode)) {
      ::unlink(bound_path.c_str());
    }
  }
  const sockaddr_un bound_addr = make_address(bound_path);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) throw errno_error("socket() for " + path, errno);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&bound_addr), sizeof bound_addr) != 0) {
    throw cannot_create(path, errno);
  }
  // From here on a failure must not leave our half-made socket file behind.
  struct Unlinker {
    const std::string& p;
    bool armed = true;
    ~Unlinker() {
      if (armed) ::unlink(p.c_str());
    }
  } unlinker{bound_path};

  // Permissions without a race. bind() created the file with 0777 & ~umask, possibly wider than
  // configured; but a Unix socket refuses every connect() until listen(), so nobody can use that
  // moment. We set the final owner group and mode first and call listen() only afterwards. We
  // do not change the process umask for this: it is process-wide and other threads may be
  // creating files. fchmod() on a socket descriptor does not reach the file, so the path is
  // used, without following symlinks; the directory must not be writable by untrusted users
  // (the same requirement that makes any path-based server safe).
  if (options.group && ::lchown(bound_path.c_str(), static_cast<uid_t>(-1), *options.group) != 0) {
    if (errno == EPERM) throw cannot_set_group(path, *options.group);
    throw errno_error(fmt::format("cannot set group {} on {}", *options.group, path), errno);
  }
  if (::fchmodat(AT_FDCWD, bound_path.c_str(), options.mode, AT_SYMLINK_NOFOLLOW) != 0) {
    throw StartupError(
        errno_message(fmt::format("cannot set mode {:04o} on {}", options.mode, path), errno));
  }
  if (::listen(fd.get(), options.backlog) != 0) {
    throw errno_error("cannot listen on " + path, errno);
  }
  if (options.takeover && ::rename(bound_path.c_str(), path.c_str()) != 0) {
    throw errno_error(fmt::format("cannot rename {} over {}", bound_path, path), errno);
  }
  unlinker.armed = false;
  // The identity is read last: a rename changes the file's change time.
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) throw errno_error("cannot stat " + path, errno);
  result.file.dev = st.st_dev;
  result.file.ino = st.st_ino;
  result.file.ctime = st.st_ctim;
  result.fd = std::move(fd);
  return result;
}

PathFate classify_fate(bool same_file, int lstat_errno, mode_t mode, int connect_errno) {
  if (lstat_errno == ENOENT || lstat_errno == ENOTDIR) return PathFate::deleted;
  if (lstat_errno != 0) return PathFate::replaced;  // cannot look: never act on a guess
  if (same_file) return PathFate::ours;
  // Only a socket a server accepts on is a successor. A stale socket, one we may not probe, a
  // file or a directory: someone else's, not ours to delete or to leave for.
  return classify_existing(0, mode, connect_errno) == ExistingPath::live_socket
             ? PathFate::successor
             : PathFate::replaced;
}

PathFate probe_fate(const SocketFile& file) {
  struct stat st {};
  if (::lstat(file.path.c_str(), &st) != 0) return classify_fate(false, errno, 0, 0);
  // Device and inode tell our file from any other: while our socket is open it holds its file's
  // inode, which so cannot be freed and its number given to a new file. (The change time is
  // not compared here, as remove_unix_socket() does: a chmod by an operator leaves it ours.)
  const bool same = st.st_dev == file.dev && st.st_ino == file.ino;
  if (same || !S_ISSOCK(st.st_mode)) return classify_fate(same, 0, st.st_mode, 0);
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (probe.get() < 0) return PathFate::replaced;
  const sockaddr_un addr = make_address(file.path);
  const int rc = ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  return classify_fate(false, 0, st.st_mode, rc == 0 ? 0 : errno);
}

std::string describe_path(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return errno_message("nothing", errno);
  if (S_ISREG(st.st_mode)) return "a regular file";
  if (S_ISDIR(st.st_mode)) return "a directory";
  if (S_ISLNK(st.st_mode)) return "a symbolic link";
  if (S_ISSOCK(st.st_mode)) return "another socket, with no server accepting on it";
  return "a special file";
}

bool remove_unix_socket(const SocketFile& socket) {
  // Under the lock, so a successor's check-and-bind cannot run between our comparison and the
  // unlink; if the lock cannot be had, leaving a stale file is the safe failure.
  try {
    UniqueFd lock = take_lock(socket.path);
    struct stat st {};
    if (::lstat(socket.path.c_str(), &st) != 0) return false;
    // Inode numbers are reused once a file is gone, so the change time (set by our chmod, to
    // the nanosecond) is compared too.
    if (st.st_dev != socket.dev || st.st_ino != socket.ino ||
        st.st_ctim.tv_sec != socket.ctime.tv_sec || st.st_ctim.tv_nsec != socket.ctime.tv_nsec) {
      return false;
    }
    return ::unlink(socket.path.c_str()) == 0;
  } catch (const StartupError&) {
    return false;
  }
}

}  // namespace printerfacts
