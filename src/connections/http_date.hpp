// The Date header value (RFC 9110 §5.6.7 IMF-fixdate), formatted at most once a second.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace printerfacts {

/// Caches the formatted current time. One per worker thread; not thread-safe.
class HttpDate {
 public:
  /// "Sun, 06 Nov 1994 08:49:37 GMT" for now.
  std::string_view now() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != cached_second_) {
      cached_second_ = ts.tv_sec;
      tm t{};
      ::gmtime_r(&ts.tv_sec, &t);
      char buf[40];
      const auto n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &t);
      text_.assign(buf, n);
    }
    return text_;
  }

 private:
  time_t cached_second_ = -1;
  std::string text_;
};

}  // namespace printerfacts
