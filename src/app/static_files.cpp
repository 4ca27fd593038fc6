#include "app/static_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "app/embedded_assets.hpp"
#include "app/mime.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

std::uint64_t fnv1a(std::string_view data) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string_view file_name_of(std::string_view relative) {
  const auto slash = relative.rfind('/');
  return slash == std::string_view::npos ? relative : relative.substr(slash + 1);
}

// Opens `relative` beneath `root_fd`. The kernel does the resolution (openat2 with
// RESOLVE_BENEATH): "..", absolute symlinks and symlinks that lead out of the root fail with
// EXDEV, whatever a concurrent rename does to the tree, which no user-space check on a path
// string can promise. Symlinks that stay inside the root are followed. O_NONBLOCK keeps a FIFO
// planted under the root from blocking the worker thread in open(); the caller then refuses
// anything that is not a regular file.
int open_beneath(int root_fd, const std::string& relative) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const long fd = ::syscall(SYS_openat2, root_fd, relative.c_str(), &how, sizeof how);
  if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);

  // Kernels before 5.6 (or a seccomp filter) lack openat2: walk the path one component at a
  // time and follow no symlink at all, which is stricter but just as safe.
  UniqueFd dir;  // the directory reached so far; the root itself is not ours to close
  std::string_view rest = relative;
  for (;;) {
    const auto slash = rest.find('/');
    const std::string part(rest.substr(0, slash));
    const bool last = slash == std::string_view::npos;
    const int flags = last ? O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW
                           : O_PATH | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW;
    UniqueFd next(::openat(dir.valid() ? dir.get() : root_fd, part.c_str(), flags));
    if (!next.valid() || last) return next.release();
    dir = std::move(next);
    rest.remove_prefix(slash + 1);
  }
}

}  // namespace

bool is_safe_segment(std::string_view segment) {
  if (segment.empty() || segment.front() == '.') return false;
  return segment.find_first_of(std::string_view("/\\\0", 3)) == std::string_view::npos;
}

StaticFiles StaticFiles::embedded() {
  StaticFiles files;
  for (const auto& asset : embedded::static_assets()) {
    files.embedded_.emplace(
        std::string(asset.name),
        EmbeddedEntry{asset.content, fmt::format("\"{:016x}\"", fnv1a(asset.content))});
  }
  return files;
}

StaticFiles StaticFiles::directory(const std::string& root) {
  StaticFiles files;
  files.root_.reset(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!files.root_.valid()) throw errno_error("cannot open static directory " + root, errno);
  return files;
}

std::optional<StaticFile> StaticFiles::open(const std::string& relative) const {
  StaticFile result;
  result.content_type = mime_type(file_name_of(relative));
  if (!root_.valid()) {
    const auto it = embedded_.find(relative);
    if (it == embedded_.end()) return std::nullopt;
    result.embedded = it->second.content;
    result.etag = it->second.etag;
    result.size = it->second.content.size();
    return result;
  }

  const int fd = open_beneath(root_.get(), relative);
  if (fd < 0) return std::nullopt;
  result.file.native_handle(fd);  // owns fd from here on
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  // Reads of regular files ignore O_NONBLOCK, but clear it so the file behaves as any other.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  result.size = static_cast<std::uint64_t>(st.st_size);
  result.etag = fmt::format("\"{:x}-{:x}\"", st.st_size,
                            static_cast<std::uint64_t>(st.st_mtim.tv_sec) * 1000000000ULL +
                                static_cast<std::uint64_t>(st.st_mtim.tv_nsec));
  return result;
}

}  // namespace printerfacts
