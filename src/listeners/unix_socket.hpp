// Creating and removing a Unix socket file without ever deleting what is not ours or exposing the
// socket with wider permissions than configured.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>

#include "config/options.hpp"
#include "util/unique_fd.hpp"

namespace printerfacts {

/// What is found at a socket path before binding, and so what may be done about it.
enum class ExistingPath {
  absent,        ///< nothing there: bind
  not_socket,    ///< a regular file, directory, symlink...: refuse, leave it untouched
  live_socket,   ///< a socket a server accepts on: refuse ("another instance is listening")
  stale_socket,  ///< a socket nobody listens on (connect refused): remove and bind
  unknown,       ///< a socket we could not probe (e.g. no permission): refuse
};

/// The decision, from lstat() and (for a socket) connect(): `lstat_errno` is 0 when the path
/// exists; `connect_errno` is 0 when connect() succeeded. Pure, so every branch is unit-tested.
ExistingPath classify_existing(int lstat_errno, mode_t mode, int connect_errno);

/// lstat() and, for a socket, a connect() probe of `path`. On `unknown`, `*error` (if given)
/// is the errno that left the question open.
ExistingPath probe_path(const std::string& path, int* error = nullptr);

/// How to create a Unix socket file.
struct UnixSocketOptions {
  mode_t mode = Options{}.socket_mode;  ///< the defaults are the command line's
  std::optional<gid_t> group;           ///< none: the process's own group
  int backlog = Options{}.backlog;
  /// A live socket at the path is taken over (--takeover) instead of refused: the new socket is
  /// bound at PATH.takeover and renamed over PATH once listening.
  bool takeover = false;
};

/// The identity of a socket file this process created: what tells it from a file a successor
/// created later at the same path.
struct SocketFile {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
  timespec ctime{};  ///< with dev and ino, tells our file from a later one that reuses the inode
};

/// A listening Unix socket this process created.
struct BoundUnixSocket {
  UniqueFd fd;
  SocketFile file;
  bool replaced_stale = false;  ///< a stale socket file was removed to make room
};

/// The directory a socket file at `path` is created in ("." for a bare name).
std::string socket_directory(const std::string& path);

/// Whether this process can create a socket at `path` and give it `group`, checked without
/// creating anything (--check, and the reason given when creating fails): the directory
/// exists and the effective user may write and search it, and the process may set the group
/// (it is root, or the group is its own or a supplementary one). Throws StartupError naming
/// the path, the user, the group and the fix.
void check_socket_creatable(const std::string& path, std::optional<gid_t> group);

/// Creates, secures and listens on a Unix socket at `path`. Throws StartupError naming the path
/// when it holds a non-socket, a live server, when another instance holds the lock, or when a
/// system call fails.
BoundUnixSocket bind_unix_socket(const std::string& path, const UnixSocketOptions& options);

/// What a socket path holds now, against the socket file this process created there.
enum class PathFate {
  ours,       ///< still our socket file
  deleted,    ///< nothing at the path: re-create it
  successor,  ///< another socket that a server accepts on: it took over (drain and exit)
  replaced,   ///< anything else (a file, a stale or unprobeable socket): leave it, say so
};

/// The decision, from whether the path still names our file (device and inode), lstat()
/// (`lstat_errno` 0 when the path exists) and, for another socket, a connect() probe. Pure.
PathFate classify_fate(bool same_file, int lstat_errno, mode_t mode, int connect_errno);

/// lstat() of `file`'s path and, when it holds another socket, a connect() probe.
PathFate probe_fate(const SocketFile& file);

/// "a regular file", "a directory", "a socket"...: what lstat() found at `path`, for messages.
std::string describe_path(const std::string& path);

/// Removes `file` if, and only if, its path still names that very file (same device, inode and
/// change time): a successor that already replaced it keeps its socket. Returns true if removed.
bool remove_unix_socket(const SocketFile& file);

}  // namespace printerfacts
