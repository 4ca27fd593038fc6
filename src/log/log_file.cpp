#include "log/log_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

int open_for_append(const std::string& path) {
  // 0640: an access log holds clients' addresses; its group may read it (logrotate's `create`
  // and the package set the group), others may not.
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
}

}  // namespace

LogFile::LogFile(std::string path) : path_(std::move(path)), fd_(open_for_append(path_)) {
  if (!fd_.valid()) {
    const int err = errno;
    throw StartupError(
        errno_message("cannot open the access log file " + path_, err) +
            "; create its directory and let the service's user write it (under systemd: "
            "LogsDirectory=), or choose another --access-log-file",
        exit_code::cant_create);
  }
}

std::string LogFile::reopen() {
  UniqueFd fresh(open_for_append(path_));
  if (!fresh.valid()) return errno_message("cannot reopen " + path_, errno);
  if (::dup3(fresh.get(), fd_.get(), O_CLOEXEC) < 0) {
    return errno_message("cannot reopen " + path_, errno);
  }
  return {};
}

}  // namespace printerfacts
