// Writing text into memory reserved beforehand: the access log and the response head are
// built on every request, and a copy per piece costs less than an append with a capacity check.
#pragma once

#include <charconv>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace printerfacts {

/// Writes into memory the caller has reserved for the worst case; nothing is checked here.
class LineWriter {
 public:
  explicit LineWriter(char* p) : p_(p) {}
  char* end() const { return p_; }

  LineWriter& operator<<(std::string_view s) {
    if (!s.empty()) {  // an empty view may hold a null pointer, which memcpy must not get
      std::memcpy(p_, s.data(), s.size());
      p_ += s.size();
    }
    return *this;
  }
  LineWriter& operator<<(char c) {
    *p_++ = c;
    return *this;
  }
  LineWriter& number(std::uint64_t v) {
    p_ = std::to_chars(p_, p_ + 20, v).ptr;
    return *this;
  }
  // Three digits, zero-padded: milliseconds of a second, microseconds of a millisecond.
  LineWriter& digits3(unsigned v) {
    p_[0] = static_cast<char>('0' + v / 100);
    p_[1] = static_cast<char>('0' + v / 10 % 10);
    p_[2] = static_cast<char>('0' + v % 10);
    p_ += 3;
    return *this;
  }
  // A count of thousandths as a decimal with three places: 42 -> "0.042".
  LineWriter& thousandths(std::uint64_t v) {
    number(v / 1000) << '.';
    return digits3(static_cast<unsigned>(v % 1000));
  }
  // Control bytes, non-ASCII, quotes and backslashes as \xHH (at most 4 bytes out per byte in).
  LineWriter& log_escaped(std::string_view text) {
    for (const char ch : text) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
        *p_++ = '\\';
        *p_++ = 'x';
        *p_++ = kHex[c >> 4];
        *p_++ = kHex[c & 15];
      } else {
        *p_++ = ch;
      }
    }
    return *this;
  }
  // JSON string content: \" \\ and \u00XX for other control or non-ASCII bytes (at most 6 out
  // per byte in).
  LineWriter& json_escaped(std::string_view text) {
    for (const char ch : text) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        *p_++ = '\\';
        *p_++ = ch;
      } else if (c < 0x20 || c >= 0x7f) {
        // Bytes, not code points: a target is not necessarily UTF-8, and each byte must survive.
        *this << "\\u00";
        *p_++ = kHex[c >> 4];
        *p_++ = kHex[c & 15];
      } else {
        *p_++ = ch;
      }
    }
    return *this;
  }

 private:
  static constexpr char kHex[] = "0123456789abcdef";
  char* p_;
};

}  // namespace printerfacts
