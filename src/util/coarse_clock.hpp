// A monotonic clock read from the kernel's last tick (CLOCK_MONOTONIC_COARSE): a few
// milliseconds coarse, and a plain memory read through the vDSO. For deadlines of a second or
// more, checked by a sweep every 10 ms or more, it is precise enough and costs far less than the
// exact clock, which a connection would read several times per request.
#pragma once

#include <time.h>

#include <chrono>

namespace printerfacts {

struct CoarseClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<CoarseClock>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point(std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec));
  }
};

}  // namespace printerfacts
