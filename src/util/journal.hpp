// Whether a standard stream is connected to the systemd journal.
#pragma once

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>

namespace printerfacts {

/// True when `fd` is the stream systemd connected to the journal: JOURNAL_STREAM holds its
/// "device:inode", which tells it apart from a stream the service redirected elsewhere.
inline bool stream_is_journal(int fd) {
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  return ::fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

}  // namespace printerfacts
