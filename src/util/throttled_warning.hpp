// A warning that a flood of the same event cannot turn into a flood of log lines.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <utility>

namespace printerfacts {

/// A warning said at most once a second, however often its cause recurs (a flood of refused
/// connections must not become a flood of log lines).
class ThrottledWarning {
 public:
  template <class... Args>
  void warn(spdlog::format_string_t<Args...> fmt, Args&&... args) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(1)) return;
    last_ = now;
    spdlog::warn(fmt, std::forward<Args>(args)...);
  }

 private:
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace printerfacts
