// The standard process_* metrics every Prometheus client exports, read from /proc.
#pragma once

#include <prometheus/metric_family.h>

#include <mutex>
#include <vector>

#include "util/unique_fd.hpp"

namespace printerfacts {

/// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
/// process_open_fds, process_max_fds and process_start_time_seconds for this process.
/// The /proc files are opened once, when it is made, and read again at each scrape: a scrape
/// needs no descriptor of its own, so the figures are right even when every other descriptor
/// is taken, which is when process_open_fds matters most. Thread-safe.
class ProcessMetrics {
 public:
  ProcessMetrics();
  std::vector<prometheus::MetricFamily> collect() const;

 private:
  UniqueFd stat_;  ///< /proc/self/stat, read with pread() from its start
  UniqueFd fds_;   ///< /proc/self/fd, listed from its start
  double boot_time_ = 0;
  mutable std::mutex fds_mutex_;  ///< fds_' offset is shared by concurrent scrapes
};

}  // namespace printerfacts
