// The files under /static/: embedded in the binary, or read from a directory given with
// --static-dir, never from anywhere outside that root.
#pragma once

#include <boost/beast/core/file_posix.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "util/unique_fd.hpp"

namespace printerfacts {

/// A file found for a request. Exactly one of `embedded` (non-empty data pointer) and `file`
/// (open) holds the content.
struct StaticFile {
  std::string_view content_type;
  std::string etag;  ///< a quoted strong entity tag
  std::uint64_t size = 0;
  std::string_view embedded;
  boost::beast::file_posix file;
};

/// True when one decoded path segment may name a file: not empty, not "." or "..", no '/',
/// '\\' or NUL, and not starting with '.' (dot files are never served).
bool is_safe_segment(std::string_view segment);

/// Joins decoded path segments into a relative path after checking each with is_safe_segment;
/// std::nullopt when any is unsafe. Rejecting rather than normalising means no sequence of
/// segments, however encoded, can climb out of the root; browsers resolve dot segments before
/// sending, so legitimate links never carry them.
template <class Range>
std::optional<std::string> safe_relative_path(const Range& decoded_segments) {
  std::string out;
  bool any = false;
  for (const auto& segment : decoded_segments) {
    const std::string_view s(segment);
    if (!is_safe_segment(s)) return std::nullopt;
    if (any) out.push_back('/');
    out.append(s);
    any = true;
  }
  if (!any) return std::nullopt;
  return out;
}

/// The set of servable static files. Immutable after construction; safe to share between
/// threads (lookups only open new descriptors).
class StaticFiles {
 public:
  /// The files of assets/static/, compiled into the binary.
  static StaticFiles embedded();

  /// The files below `root` (a directory). Throws StartupError naming `root` if it cannot be
  /// opened as a directory.
  static StaticFiles directory(const std::string& root);

  StaticFiles(StaticFiles&&) noexcept = default;
  StaticFiles& operator=(StaticFiles&&) noexcept = default;

  /// The file at `relative` (a result of safe_relative_path), or std::nullopt when there is no
  /// regular file there inside the root.
  std::optional<StaticFile> open(const std::string& relative) const;

 private:
  StaticFiles() = default;

  struct EmbeddedEntry {
    std::string_view content;
    std::string etag;
  };
  std::unordered_map<std::string, EmbeddedEntry> embedded_;
  UniqueFd root_;  ///< an O_PATH descriptor of --static-dir; none for the embedded files
};

}  // namespace printerfacts
