// The one error type of start-up: configuration, address parsing, socket creation.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace printerfacts {

/// Exit statuses, from sysexits(3), so that a supervisor can tell a configuration that will
/// never start (64, 78: the units' RestartPreventExitStatus=) from a failure a restart may cure.
/// printerfacts(1), EXIT STATUS, lists them.
namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int failure = 1;         ///< healthcheck: not healthy; serving ended in error
inline constexpr int usage = 64;          ///< EX_USAGE: a flag or argument that is not understood
inline constexpr int no_input = 66;       ///< EX_NOINPUT: the facts file or static dir is missing
inline constexpr int unavailable = 69;    ///< EX_UNAVAILABLE: the address is in use
inline constexpr int software = 70;       ///< EX_SOFTWARE: an unexpected internal error
inline constexpr int os_error = 71;       ///< EX_OSERR: a system call failed (descriptors, memory)
inline constexpr int cant_create = 73;    ///< EX_CANTCREAT: the access log file cannot be opened
inline constexpr int no_permission = 77;  ///< EX_NOPERM: the socket's directory, group, a port
inline constexpr int config = 78;         ///< EX_CONFIG: the configuration is wrong
}  // namespace exit_code

/// A failure that prevents the server from starting. The message names the path, address or
/// value involved, and the fix where there is one; main() prints it once and exits with `code()`.
/// Never thrown while serving.
class StartupError : public std::runtime_error {
 public:
  explicit StartupError(const std::string& message, int code = exit_code::config)
      : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

/// The exit status for a system call that failed with `err`: a permission, an address in use,
/// or the system itself.
inline int exit_code_for_errno(int err) {
  switch (err) {
    case EACCES:
    case EPERM:
    case EROFS:
      return exit_code::no_permission;
    case EADDRINUSE:
      return exit_code::unavailable;
    case ENOENT:
    case ENOTDIR:
      return exit_code::no_input;
    default:
      return exit_code::os_error;
  }
}

/// "context: strerror(err)", for wrapping a failed system call with what it was doing.
inline std::string errno_message(const std::string& context, int err) {
  return context + ": " + std::strerror(err);
}

/// The same as a StartupError whose exit status follows from `err`.
inline StartupError errno_error(const std::string& context, int err) {
  return StartupError(errno_message(context, err), exit_code_for_errno(err));
}

}  // namespace printerfacts
