// The service's Prometheus metrics: per-worker statistics, rare events, process figures, all
// rendered in the text exposition format with prometheus-cpp.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "log/log_stream.hpp"
#include "metrics/process_metrics.hpp"
#include "metrics/worker_metrics.hpp"
#include "routing/router.hpp"

namespace printerfacts {

/// A listener as metrics label and observe it.
struct MetricsListener {
  std::string name;  ///< "unix:/run/...", "tcp:[::]:3000": the `listener` label
  bool is_unix = false;
  std::optional<ino_t> inode;  ///< its socket, for the listen queue gauges (listen_queue.hpp)
};

/// Owns every worker's WorkerMetrics and renders them, summed, for /metrics. Thread-safe:
/// workers write only their own WorkerMetrics; render() may run on any thread.
class Metrics : public MetricsSource {
 public:
  /// `listeners` are the server's, by index.
  Metrics(std::vector<MetricsListener> listeners, unsigned workers);

  WorkerMetrics& worker(unsigned index) { return *workers_[index]; }

  /// Stale socket files removed at start-up.
  void stale_sockets_removed(int count);
  /// The workers' event loop, "epoll" or "io_uring" (printerfacts_io_backend).
  void io_backend(std::string_view name);

  /// One reload (SIGHUP) applied, or refused for an invalid configuration.
  void reload_finished(bool applied);

  /// The socket file of listener `index` was deleted and made again; `inode` is its new
  /// socket's (for the listen queue gauges).
  void socket_recreated(std::size_t index, std::optional<ino_t> inode);

  /// One upgrade (SIGUSR2) ended: "succeeded" (said by the old process, just before it exits)
  /// or "failed" (the new binary did not become ready; this process serves on).
  void upgrade_finished(bool succeeded);

  /// The log streams whose dropped lines are exported (null entries are skipped); they must
  /// outlive the Metrics. Call before serving.
  void observe_logs(std::vector<const LogStream*> streams) { logs_ = std::move(streams); }

  std::string render() const override;

  /// Requests finished so far, every worker together (for systemd's STATUS=).
  std::uint64_t requests_finished() const;

 private:
  // render(), one part per group of families, each summed over the workers.
  void add_request_families(std::vector<prometheus::MetricFamily>& out) const;
  void add_connection_families(std::vector<prometheus::MetricFamily>& out) const;
  void add_listen_queue_families(std::vector<prometheus::MetricFamily>& out) const;
  prometheus::MetricFamily log_lines_dropped() const;

  std::vector<MetricsListener> listeners_;
  std::vector<std::unique_ptr<WorkerMetrics>> workers_;
  std::vector<const LogStream*> logs_;
  ProcessMetrics process_;
  // Rare, process-wide events live in a prometheus-cpp registry of their own.
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& stale_sockets_;
  prometheus::Family<prometheus::Counter>& reloads_;
  prometheus::Family<prometheus::Counter>& recreated_;
  prometheus::Family<prometheus::Counter>& upgrades_;
  // Each listener's socket inode, 0 for none; a re-created socket has a new one.
  std::unique_ptr<std::atomic<ino_t>[]> inodes_;
};

}  // namespace printerfacts
