#include "log/access_log.hpp"

#include <unistd.h>

#include <cerrno>
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

void append_log_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::size_t clean = 0;  // start of the run of bytes that need no escaping
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      out.append(text.data() + clean, i - clean);
      const char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
      out.append(esc, 4);
      clean = i + 1;
    }
  }
  out.append(text.data() + clean, text.size() - clean);
}


namespace {

void append_uint(std::string& out, std::uint64_t v) {
  char digits[20];
  const auto end = std::to_chars(std::begin(digits), std::end(digits), v).ptr;
  out.append(digits, end);
}

// Three digits, zero-padded: milliseconds of a second, microseconds of a millisecond.
void append_3digits(std::string& out, unsigned v) {
  const char d[3] = {static_cast<char>('0' + v / 100), static_cast<char>('0' + v / 10 % 10),
                     static_cast<char>('0' + v % 10)};
  out.append(d, 3);
}

}  // namespace

// Formatted by hand, not with fmt: this runs on every request, and format_to into a string
// through a back_inserter cost more instructions than the rest of a /fact request.
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
  std::string& out = buffer_;
  if (style_.json) {
    // {"time":"...","peer":"unix:pid=1,uid=0,gid=0","method":"GET","target":"/fact",
    //  "version":"1.1","status":200,"bytes":85,"duration_ms":0.042}
    out.push_back('{');
    if (style_.timestamps) {
      out.append("\"time\":\"").append(time_prefix_);
      append_3digits(out, millis);
      out.append("Z\",");
    }
    out.append("\"peer\":\"");
    append_json_escaped(out, r.peer);
    out.append("\",\"method\":\"");
    append_json_escaped(out, r.method);
    out.append("\",\"target\":\"");
    append_json_escaped(out, r.target);
    out.append("\",\"version\":\"").append(version, 3).append("\",\"status\":");
    append_uint(out, r.status);
    out.append(",\"bytes\":");
    append_uint(out, r.bytes);
    out.append(",\"duration_ms\":");
    append_uint(out, us / 1000);
    out.push_back('.');
    append_3digits(out, static_cast<unsigned>(us % 1000));
    out.append("}\n");
  } else {
    // 2026-11-28T04:15:17.123Z unix:pid=1,uid=0,gid=0 "GET /fact HTTP/1.1" 200 85 0.042ms
    if (style_.timestamps) {
      out.append(time_prefix_);
      append_3digits(out, millis);
      out.append("Z ");
    }
    out.append(r.peer).append(" \"");
    append_log_escaped(out, r.method);
    out.push_back(' ');
    append_log_escaped(out, r.target);
    out.append(" HTTP/").append(version, 3).append("\" ");
    append_uint(out, r.status);
    out.push_back(' ');
    append_uint(out, r.bytes);
    out.push_back(' ');
    append_uint(out, us / 1000);
    out.push_back('.');
    append_3digits(out, static_cast<unsigned>(us % 1000));
    out.append("ms\n");
  }
  if (buffer_.size() >= 32 * 1024) {
    flush();
  } else if (was_empty) {
    boost::asio::post(executor_, [this] { flush(); });
  }
}

void append_json_escaped(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20 || c >= 0x7f) {
      // Bytes, not code points: a target is not necessarily UTF-8, and each byte must survive.
      const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out.append(esc, 6);
    } else {
      out.push_back(ch);
    }
  }
}

void AccessLog::flush() {
  if (buffer_.empty()) return;
  sink_.write(buffer_);
  buffer_.clear();
}

}  // namespace printerfacts
