// The access log's file (--access-log-file), reopened at the same path on SIGUSR1 after a
// rotation moved it away (nginx's and logrotate's convention).
#pragma once

#include <string>

#include "util/unique_fd.hpp"

namespace printerfacts {

/// A log file opened for appending. Reopening gives the new file the old one's descriptor
/// number (dup3), so the stream's writer thread, which writes to that number, goes on without
/// being told: a line is written whole to the old file or to the new one.
class LogFile {
 public:
  /// Opens (creates, mode 0640) `path` for appending. Throws StartupError naming the path and
  /// the fix (EX_CANTCREAT, 73) when it cannot be.
  explicit LogFile(std::string path);

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  /// Opens the path again; on failure the old file is kept and written on, and the reason is
  /// returned (empty on success).
  std::string reopen();

 private:
  std::string path_;
  UniqueFd fd_;
};

}  // namespace printerfacts
