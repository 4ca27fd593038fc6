// Writing text into memory reserved beforehand: the access log and the response head are
// built on every request, and a copy per piece costs less than an append with a capacity check.
#pragma once

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace printerfacts {

/// Writes into [begin, limit), memory the caller has reserved for the worst case. Every write
/// checks that it fits in debug and fuzz builds (a too small reservation aborts, naming the
/// shortfall); release builds trust the caller's sizing, which those builds test.
class LineWriter {
 public:
  LineWriter(char* begin, char* limit) : p_(begin), limit_(limit) {}
  /// One past the last byte written.
  char* end() const { return p_; }

  LineWriter& operator<<(std::string_view s) {
    if (!s.empty()) {  // an empty view may hold a null pointer, which memcpy must not get
      room(s.size());
      std::memcpy(p_, s.data(), s.size());
      p_ += s.size();
    }
    return *this;
  }
  LineWriter& operator<<(char c) {
    room(1);
    *p_++ = c;
    return *this;
  }
  LineWriter& number(std::uint64_t v) {
    room(20);
    p_ = std::to_chars(p_, p_ + 20, v).ptr;
    return *this;
  }
  // Three digits, zero-padded: milliseconds of a second, microseconds of a millisecond.
  LineWriter& digits3(unsigned v) {
    room(3);
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
    room(4 * text.size());
    // Through a local pointer: a store through char* may alias p_ itself, so writing through
    // p_ makes the compiler reload and store it for every byte.
    char* out = p_;
    for (const char ch : text) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
        out[0] = '\\';
        out[1] = 'x';
        out[2] = kHex[c >> 4];
        out[3] = kHex[c & 15];
        out += 4;
      } else {
        *out++ = ch;
      }
    }
    p_ = out;
    return *this;
  }
  // JSON string content: \" \\ and \u00XX for other control or non-ASCII bytes (at most 6 out
  // per byte in).
  LineWriter& json_escaped(std::string_view text) {
    room(6 * text.size());
    // Runs of bytes that need no escape are found first and copied whole; a local pointer, as
    // in log_escaped.
    char* out = p_;
    const char* in = text.data();
    const char* const end = in + text.size();
    while (in != end) {
      const char* run = in;
      while (in != end && kJsonPlain[static_cast<unsigned char>(*in)]) ++in;
      std::memcpy(out, run, static_cast<std::size_t>(in - run));
      out += in - run;
      if (in == end) break;
      const auto c = static_cast<unsigned char>(*in++);
      if (c == '"' || c == '\\') {
        out[0] = '\\';
        out[1] = static_cast<char>(c);
        out += 2;
      } else {
        // Bytes, not code points: a target is not necessarily UTF-8, and each byte must survive.
        std::memcpy(out, "\\u00", 4);
        out[4] = kHex[c >> 4];
        out[5] = kHex[c & 15];
        out += 6;
      }
    }
    p_ = out;
    return *this;
  }

 private:
  void room([[maybe_unused]] std::size_t n) const {
#if !defined(NDEBUG) || defined(PRINTERFACTS_FUZZ)
    if (static_cast<std::size_t>(limit_ - p_) < n) {
      std::fprintf(stderr, "LineWriter: %zu bytes to write, %td reserved\n", n, limit_ - p_);
      std::abort();
    }
#endif
  }

  static constexpr char kHex[] = "0123456789abcdef";
  // The bytes JSON string content holds as they are: printable ASCII but '"' and '\\'.
  static constexpr auto kJsonPlain = [] {
    std::array<bool, 256> plain{};
    for (unsigned c = 0x20; c < 0x7f; ++c) plain[c] = c != '"' && c != '\\';
    return plain;
  }();
  char* p_;
  char* limit_;
};

}  // namespace printerfacts
