// `printerfacts doctor --as USER`: why can't nginx (or USER) connect to the socket? Read-only:
// it walks the path as USER would, checks the socket's mode and group, connects as USER when
// run as root, and looks at the running nginx: does it see the same socket, is its worker in the
// socket's group.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

namespace printerfacts {

struct DoctorRequest {
  std::string user;                ///< who must be able to connect (name or number)
  std::string socket_path;         ///< the Unix socket
  std::optional<pid_t> nginx_pid;  ///< the nginx to check; none: /run/nginx.pid, else /proc
};

/// Prints its findings to stdout, one per line ("ok:", "FAIL:", "hint:"); returns 0 when USER
/// connected and got an answer to /healthz, 1 otherwise, the first failing step named.
int run_doctor(const DoctorRequest& request);

}  // namespace printerfacts
