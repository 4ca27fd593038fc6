#include "log/access_log.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <charconv>
#include <cstdint>
#include <iterator>
#include <ctime>

#include <boost/asio/post.hpp>

namespace printerfacts {

void AccessLogSink::write(std::string_view lines) {
  std::lock_guard lock(mutex_);
  while (!lines.empty()) {
    const ssize_t n = ::write(fd_, lines.data(), lines.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // a closed or full stdout must not stop the service; the lines are dropped
    }
    lines.remove_prefix(static_cast<std::size_t>(n));
  }
}

namespace {

// Writes a line into memory reserved beforehand (AccessLog::record computes the worst case), so
// each piece is a copy, not a call with a capacity check.
class LineWriter {
 public:
  explicit LineWriter(char* p) : p_(p) {}
  char* end() const { return p_; }

  LineWriter& operator<<(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
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

}  // namespace

// Written by hand into reserved memory, not with fmt: this runs on every request, and
// fmt::format_to into a string through a back_inserter cost more instructions than the rest of
// a /fact request.
void AccessLog::record(const AccessRecord& r) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != cached_second_) {
    cached_second_ = ts.tv_sec;
    tm t{};
    ::gmtime_r(&ts.tv_sec, &t);
    std::strftime(time_prefix_, sizeof time_prefix_, "%Y-%m-%dT%H:%M:%S.", &t);
  }
  const bool was_empty = buffer_.empty();
  const auto millis = static_cast<unsigned>(ts.tv_nsec / 1000000);
  // Milliseconds with three decimals, from integer microseconds.
  const auto us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(r.duration).count());
  const char version[3] = {static_cast<char>('0' + r.version / 10), '.',
                           static_cast<char>('0' + r.version % 10)};
  // The longest line these fields can make: fixed text and numbers, plus every escaped byte
  // at its longest.
  const std::size_t worst = 192 + sizeof time_prefix_ + 6 * (r.peer.size() + r.method.size() + r.target.size());
  const std::size_t start = buffer_.size();
  buffer_.resize(start + worst);
  LineWriter w(buffer_.data() + start);
  if (style_.json) {
    // {"time":"...","peer":"unix:pid=1,uid=0,gid=0","method":"GET","target":"/fact",
    //  "version":"1.1","status":200,"bytes":85,"duration_ms":0.042}
    w << '{';
    if (style_.timestamps) {
      w << "\"time\":\"" << time_prefix_;
      w.digits3(millis) << "Z\",";
    }
    w << "\"peer\":\"";
    w.json_escaped(r.peer) << "\",\"method\":\"";
    w.json_escaped(r.method) << "\",\"target\":\"";
    w.json_escaped(r.target) << "\",\"version\":\"" << std::string_view(version, 3) << "\",\"status\":";
    w.number(r.status) << ",\"bytes\":";
    w.number(r.bytes) << ",\"duration_ms\":";
    w.thousandths(us) << "}\n";
  } else {
    // 2026-11-28T04:15:17.123Z unix:pid=1,uid=0,gid=0 "GET /fact HTTP/1.1" 200 85 0.042ms
    if (style_.timestamps) {
      w << time_prefix_;
      w.digits3(millis) << "Z ";
    }
    w << r.peer << " \"";
    w.log_escaped(r.method) << ' ';
    w.log_escaped(r.target) << " HTTP/" << std::string_view(version, 3) << "\" ";
    w.number(r.status) << ' ';
    w.number(r.bytes) << ' ';
    w.thousandths(us) << "ms\n";
  }
  buffer_.resize(static_cast<std::size_t>(w.end() - buffer_.data()));
  if (buffer_.size() >= 32 * 1024) {
    flush();
  } else if (was_empty) {
    boost::asio::post(executor_, [this] { flush(); });
  }
}

void append_json_escaped(std::string& out, std::string_view text) {
  const std::size_t start = out.size();
  out.resize(start + 6 * text.size());
  LineWriter w(out.data() + start);
  w.json_escaped(text);
  out.resize(static_cast<std::size_t>(w.end() - out.data()));
}

void AccessLog::flush() {
  if (buffer_.empty()) return;
  sink_.write(buffer_);
  buffer_.clear();
}

}  // namespace printerfacts
