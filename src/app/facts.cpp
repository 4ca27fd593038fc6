#include "app/facts.hpp"

#include <fstream>
#include <sstream>

#include "app/embedded_assets.hpp"
#include "app/html.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {

Facts Facts::embedded() {
  return parse(embedded::facts(), "built-in facts");
}

Facts Facts::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw errno_error("cannot open facts file " + path, errno);
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) throw errno_error("cannot read facts file " + path, errno);
  return parse(content.str(), "facts file " + path);
}

Facts Facts::parse(std::string_view text, std::string_view origin) {
  std::vector<Fact> facts;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const auto eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    if (!is_valid_utf8(line)) {
      throw StartupError(std::string(origin) + ": line " + std::to_string(line_no) +
                         " is not valid UTF-8");
    }
    facts.push_back(Fact{std::string(line) + "\n", html_escape(line)});
  }
  if (facts.empty()) throw StartupError(std::string(origin) + " contains no facts");
  return Facts(std::move(facts));
}

bool is_valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    std::uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    static constexpr std::uint32_t kMinimum[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMinimum[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += extra + 1;
  }
  return true;
}

}  // namespace printerfacts
