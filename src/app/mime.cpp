#include "app/mime.hpp"

#include <array>
#include <boost/beast/core/string.hpp>
#include <utility>

namespace printerfacts {

std::string_view mime_type(std::string_view file_name) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 18> kTypes{{
      {"css", "text/css; charset=utf-8"},
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"txt", "text/plain; charset=utf-8"},
      {"js", "text/javascript; charset=utf-8"},
      {"json", "application/json"},
      {"svg", "image/svg+xml"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"webp", "image/webp"},
      {"ico", "image/vnd.microsoft.icon"},
      {"woff2", "font/woff2"},
      {"woff", "font/woff"},
      {"xml", "application/xml"},
      {"pdf", "application/pdf"},
      {"wasm", "application/wasm"},
  }};
  const auto dot = file_name.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  const auto ext = file_name.substr(dot + 1);
  for (const auto& [e, type] : kTypes) {
    if (boost::beast::iequals(ext, e)) return type;
  }
  return "application/octet-stream";
}

}  // namespace printerfacts
