// The one error type of start-up: configuration, address parsing, socket creation.
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace printerfacts {

/// A failure that prevents the server from starting. The message names the path, address or
/// value involved; main() prints it once and exits non-zero. Never thrown while serving.
class StartupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// "context: strerror(err)", for wrapping a failed system call with what it was doing.
inline std::string errno_message(const std::string& context, int err) {
  return context + ": " + std::strerror(err);
}

}  // namespace printerfacts
