// The standard process_* metrics every Prometheus client exports, read from /proc.
#pragma once

#include <prometheus/metric_family.h>

#include <vector>

namespace printerfacts {

/// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
/// process_open_fds, process_max_fds and process_start_time_seconds for this process.
std::vector<prometheus::MetricFamily> collect_process_metrics();

}  // namespace printerfacts
