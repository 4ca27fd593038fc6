// Any request target under /static/: percent-decoded by Boost.URL as the router does, then
// checked by safe_relative_path. Whatever it accepts must be a plain relative path that cannot
// leave the root.
#include <boost/url/parse.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "app/static_files.hpp"
#include "util/iterator_range.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string target = "/static/" + std::string(reinterpret_cast<const char*>(data), size);
  const auto url = boost::urls::parse_origin_form(target);
  if (!url) return 0;
  const auto segments = url->segments();
  if (segments.empty()) return 0;
  const printerfacts::IteratorRange rest{std::next(segments.begin()), segments.end()};
  const auto relative = printerfacts::safe_relative_path(rest);
  if (!relative) return 0;
  const std::string& p = *relative;
  if (p.empty() || p.front() == '/' || p.find('\0') != std::string::npos ||
      p.find('\\') != std::string::npos) {
    __builtin_trap();
  }
  std::size_t start = 0;
  while (start <= p.size()) {
    const auto end = std::min(p.find('/', start), p.size());
    const std::string_view segment(p.data() + start, end - start);
    if (segment.empty() || segment == "." || segment == ".." || segment.front() == '.')
      __builtin_trap();
    start = end + 1;
  }
  // The embedded set is looked up with it (no file system access for this lookup).
  static const auto files = printerfacts::StaticFiles::embedded();
  (void)files.open(p);
  return 0;
}
