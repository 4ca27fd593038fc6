#include "log/access_log.hpp"

#include <unistd.h>

#include <cerrno>
#include <ctime>

#include <boost/asio/post.hpp>
#include <fmt/format.h>

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
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      const char esc[4] = {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
      out.append(esc, 4);
    } else {
      out.push_back(ch);
    }
  }
}

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
  const auto out = std::back_inserter(buffer_);
  // Milliseconds with three decimals, from integer microseconds: formatting a double costs
  // several times more, on every request.
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(r.duration).count();
  const auto ms = us / 1000;
  const auto frac = us % 1000;
  if (style_.json) {
    // {"time":"...","peer":"unix:pid=1,uid=0,gid=0","method":"GET","target":"/fact",
    //  "version":"1.1","status":200,"bytes":85,"duration_ms":0.042}
    buffer_.push_back('{');
    if (style_.timestamps) {
      fmt::format_to(out, "\"time\":\"{}{:03}Z\",", time_prefix_, ts.tv_nsec / 1000000);
    }
    buffer_.append("\"peer\":\"");
    append_json_escaped(buffer_, r.peer);
    buffer_.append("\",\"method\":\"");
    append_json_escaped(buffer_, r.method);
    buffer_.append("\",\"target\":\"");
    append_json_escaped(buffer_, r.target);
    fmt::format_to(out, "\",\"version\":\"{}.{}\",\"status\":{},\"bytes\":{},\"duration_ms\":{}.{:03}}}\n",
                   r.version / 10, r.version % 10, r.status, r.bytes, ms, frac);
  } else {
    // 2026-11-28T04:15:17.123Z unix:pid=1,uid=0,gid=0 "GET /fact HTTP/1.1" 200 85 0.042ms
    if (style_.timestamps) fmt::format_to(out, "{}{:03}Z ", time_prefix_, ts.tv_nsec / 1000000);
    fmt::format_to(out, "{} \"", r.peer);
    append_log_escaped(buffer_, r.method);
    buffer_.push_back(' ');
    append_log_escaped(buffer_, r.target);
    fmt::format_to(out, " HTTP/{}.{}\" {} {} {}.{:03}ms\n", r.version / 10, r.version % 10, r.status,
                   r.bytes, ms, frac);
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
