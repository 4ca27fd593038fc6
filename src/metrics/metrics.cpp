#include "metrics/metrics.hpp"

#include <prometheus/text_serializer.h>

#include "metrics/listen_queue.hpp"
#include "metrics/process_metrics.hpp"
#include "util/build_info.hpp"

namespace printerfacts {

namespace http = boost::beast::http;
using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

void WorkerMetrics::request_finished(Route route, http::verb method, unsigned status,
                                     std::uint64_t bytes, std::chrono::nanoseconds took) {
  const auto r = static_cast<std::size_t>(route);
  const std::size_t m = method == http::verb::get ? 0 : method == http::verb::head ? 1 : 2;
  std::size_t s = kStatusCodes.size();
  for (std::size_t i = 0; i < kStatusCodes.size(); ++i) {
    if (kStatusCodes[i] == status) {
      s = i;
      break;
    }
  }
  requests[r][m][s].add();
  const double seconds = std::chrono::duration<double>(took).count();
  std::size_t b = 0;
  while (b < kDurationBuckets.size() && seconds > kDurationBuckets[b]) ++b;
  duration_buckets[r][b].add();
  duration_sum_ns[r].add(static_cast<std::uint64_t>(took.count()));
  bytes_sent.add(bytes);
  finished.add();
}

Metrics::Metrics(std::vector<MetricsListener> listeners, unsigned workers)
    : listeners_(std::move(listeners)),
      registry_(std::make_shared<prometheus::Registry>()),
      stale_sockets_(prometheus::BuildCounter()
                         .Name("printerfacts_stale_sockets_removed_total")
                         .Help("Stale Unix socket files removed at start-up to make room.")
                         .Register(*registry_)),
      reloads_(
          prometheus::BuildCounter()
              .Name("printerfacts_reloads_total")
              .Help(
                  "Reloads on SIGHUP, by result: applied, or failed (the old configuration kept).")
              .Register(*registry_)),
      recreated_(prometheus::BuildCounter()
                     .Name("printerfacts_socket_recreated_total")
                     .Help("Unix socket files re-created after they were deleted from under the "
                           "running server (--socket-guard).")
                     .Register(*registry_)),
      upgrades_(prometheus::BuildCounter()
                    .Name("printerfacts_upgrades_total")
                    .Help("Upgrades in place (SIGUSR2), by result: failed (the new binary did "
                          "not become ready; this process serves on) or succeeded.")
                    .Register(*registry_)),
      inodes_(std::make_unique<std::atomic<ino_t>[]>(listeners_.size())) {
  for (std::size_t i = 0; i < listeners_.size(); ++i) inodes_[i] = listeners_[i].inode.value_or(0);
  recreated_.Add({});
  upgrades_.Add({{"result", "succeeded"}});
  upgrades_.Add({{"result", "failed"}});
  for (unsigned i = 0; i < workers; ++i) {
    workers_.push_back(std::make_unique<WorkerMetrics>(listeners_.size()));
  }
  stale_sockets_.Add({});
  reloads_.Add({{"result", "applied"}});
  reloads_.Add({{"result", "failed"}});
  auto& build = prometheus::BuildGauge()
                    .Name("printerfacts_build_info")
                    .Help("Always 1; the labels describe the running build.")
                    .Register(*registry_);
  build.Add({{"version", kBuildVersion}, {"commit", kBuildCommit}}).Set(1);
}

void Metrics::io_backend(std::string_view name) {
  prometheus::BuildGauge()
      .Name("printerfacts_io_backend")
      .Help("Always 1; the label names the workers' event loop (--io-backend).")
      .Register(*registry_)
      .Add({{"backend", std::string(name)}})
      .Set(1);
}

void Metrics::stale_sockets_removed(int count) {
  stale_sockets_.Add({}).Increment(count);
}

void Metrics::socket_recreated(std::size_t index, std::optional<ino_t> inode) {
  recreated_.Add({}).Increment();
  if (index < listeners_.size()) inodes_[index] = inode.value_or(0);
}

std::uint64_t Metrics::requests_finished() const {
  std::uint64_t n = 0;
  for (const auto& w : workers_) n += w->finished.get();
  return n;
}

void Metrics::upgrade_finished(bool succeeded) {
  upgrades_.Add({{"result", succeeded ? "succeeded" : "failed"}}).Increment();
}

void Metrics::reload_finished(bool applied) {
  reloads_.Add({{"result", applied ? "applied" : "failed"}}).Increment();
}

namespace {

ClientMetric labelled(std::vector<ClientMetric::Label> labels) {
  ClientMetric m;
  m.label = std::move(labels);
  return m;
}

std::string status_label(std::size_t slot) {
  return slot < kStatusCodes.size() ? std::to_string(kStatusCodes[slot]) : "other";
}

}  // namespace

MetricFamily Metrics::log_lines_dropped() const {
  MetricFamily dropped{"printerfacts_log_lines_dropped_total",
                       "Log lines dropped instead of written, by stream (access: stdout, "
                       "diagnostics: stderr) and reason: queue_full (the reader is stalled or "
                       "slow), no_space, closed, write_error, exit.",
                       MetricType::Counter,
                       {}};
  for (const LogStream* stream : logs_) {
    if (stream == nullptr) continue;
    for (std::size_t r = 0; r < kLogDropReasons.size(); ++r) {
      auto metric =
          labelled({{"stream", stream->name()}, {"reason", std::string(kLogDropReasons[r])}});
      metric.counter.value = static_cast<double>(stream->dropped(static_cast<LogDrop>(r)));
      dropped.metric.push_back(std::move(metric));
    }
  }
  return dropped;
}

std::string Metrics::render() const {
  std::vector<MetricFamily> families = registry_->Collect();
  add_request_families(families);
  add_connection_families(families);
  add_listen_queue_families(families);
  families.push_back(log_lines_dropped());
  for (auto& f : process_.collect()) families.push_back(std::move(f));
  return prometheus::TextSerializer().Serialize(families);
}

// Requests by route, method and status; their durations; in flight; bytes; ignored headers.
void Metrics::add_request_families(std::vector<MetricFamily>& out) const {
  MetricFamily requests{"printerfacts_http_requests_total",
                        "HTTP requests answered, by route, method and status code.",
                        MetricType::Counter,
                        {}};
  MetricFamily duration{"printerfacts_http_request_duration_seconds",
                        "Time from a request's first byte to its response written, by route.",
                        MetricType::Histogram,
                        {}};
  for (std::size_t r = 0; r < kRouteCount; ++r) {
    const std::string route(route_name(static_cast<Route>(r)));
    for (std::size_t m = 0; m < kMethodLabels.size(); ++m) {
      for (std::size_t s = 0; s < kStatusSlots; ++s) {
        std::uint64_t n = 0;
        for (const auto& w : workers_) n += w->requests[r][m][s].get();
        if (n == 0) continue;
        auto metric = labelled({{"code", status_label(s)},
                                {"method", std::string(kMethodLabels[m])},
                                {"route", route}});
        metric.counter.value = static_cast<double>(n);
        requests.metric.push_back(std::move(metric));
      }
    }
    std::array<std::uint64_t, kDurationBuckets.size() + 1> counts{};
    std::uint64_t sum_ns = 0;
    for (const auto& w : workers_) {
      for (std::size_t b = 0; b < counts.size(); ++b) counts[b] += w->duration_buckets[r][b].get();
      sum_ns += w->duration_sum_ns[r].get();
    }
    std::uint64_t cumulative = 0;
    auto metric = labelled({{"route", route}});
    for (std::size_t b = 0; b < kDurationBuckets.size(); ++b) {
      cumulative += counts[b];
      metric.histogram.bucket.push_back({cumulative, kDurationBuckets[b]});
    }
    cumulative += counts.back();
    if (cumulative == 0) continue;
    metric.histogram.bucket.push_back({cumulative, std::numeric_limits<double>::infinity()});
    metric.histogram.sample_count = cumulative;
    metric.histogram.sample_sum = static_cast<double>(sum_ns) / 1e9;
    duration.metric.push_back(std::move(metric));
  }

  std::uint64_t started = 0, finished = 0, bytes = 0, ignored = 0;
  for (const auto& w : workers_) {
    started += w->started.get();
    finished += w->finished.get();
    bytes += w->bytes_sent.get();
    ignored += w->forwarded_ignored.get();
  }
  MetricFamily forwarded_ignored{
      "printerfacts_forwarded_headers_ignored_total",
      "Requests whose client header (--client-header) was ignored because their peer is not "
      "trusted to send one (--trust-forwarded).",
      MetricType::Counter,
      {ClientMetric{}}};
  forwarded_ignored.metric[0].counter.value = static_cast<double>(ignored);
  MetricFamily in_flight{
      "printerfacts_http_requests_in_flight",
      "Requests whose first byte has arrived and whose response is not yet written.",
      MetricType::Gauge,
      {ClientMetric{}}};
  // The two counters are read one after the other while workers run; never report below zero.
  in_flight.metric[0].gauge.value =
      started > finished ? static_cast<double>(started - finished) : 0;
  MetricFamily sent{"printerfacts_http_response_bytes_total",
                    "Bytes of HTTP responses written, headers included.",
                    MetricType::Counter,
                    {ClientMetric{}}};
  sent.metric[0].counter.value = static_cast<double>(bytes);
  for (auto* f : {&requests, &duration, &in_flight, &sent, &forwarded_ignored}) {
    out.push_back(std::move(*f));
  }
}

// Connections by listener: accepted, open, refused at the limit, rejected by credentials.
void Metrics::add_connection_families(std::vector<MetricFamily>& out) const {
  MetricFamily accepted{"printerfacts_connections_accepted_total",
                        "Connections accepted, by listener.",
                        MetricType::Counter,
                        {}};
  MetricFamily open{
      "printerfacts_connections_open", "Connections open now, by listener.", MetricType::Gauge, {}};
  MetricFamily refused{"printerfacts_connections_refused_total",
                       "Connections closed unanswered, by listener and reason: limit (the "
                       "listener's connection limit was reached: --max-connections, or the "
                       "metrics listeners' reserve), uid_quota (--max-connections-per-uid), "
                       "proxy_missing, proxy_malformed, proxy_truncated, proxy_oversized (a "
                       "--proxy-protocol peer's header).",
                       MetricType::Counter,
                       {}};
  MetricFamily rejected{"printerfacts_peer_credential_rejections_total",
                        "Unix-socket connections closed unread because the peer's uid/gid is not "
                        "allowed (--allow-uid, --allow-gid), by listener.",
                        MetricType::Counter,
                        {}};
  for (std::size_t l = 0; l < listeners_.size(); ++l) {
    std::uint64_t a = 0, c = 0, x = 0, over = 0;
    for (const auto& w : workers_) {
      a += w->accepted[l].get();
      c += w->closed[l].get();
      x += w->rejected[l].get();
      over += w->over_limit[l].get();
    }
    auto at_limit = labelled({{"listener", listeners_[l].name}, {"reason", "limit"}});
    at_limit.counter.value = static_cast<double>(over);
    refused.metric.push_back(std::move(at_limit));
    for (std::size_t r = 0; r < kRefusalLabels.size(); ++r) {
      std::uint64_t n = 0;
      for (const auto& w : workers_) n += w->refused[l][r].get();
      auto why =
          labelled({{"listener", listeners_[l].name}, {"reason", std::string(kRefusalLabels[r])}});
      why.counter.value = static_cast<double>(n);
      refused.metric.push_back(std::move(why));
    }
    auto metric = labelled({{"listener", listeners_[l].name}});
    metric.counter.value = static_cast<double>(a);
    accepted.metric.push_back(metric);
    metric.counter.value = 0;
    metric.gauge.value = a > c ? static_cast<double>(a - c) : 0;
    open.metric.push_back(metric);
    metric.gauge.value = 0;
    metric.counter.value = static_cast<double>(x);
    rejected.metric.push_back(std::move(metric));
  }
  // How evenly the workers share the connections (load-aware admission keeps each near the
  // mean): open connections by worker thread, every listener together.
  MetricFamily by_worker{"printerfacts_worker_connections_open",
                         "Connections open now, by worker thread (all listeners).",
                         MetricType::Gauge,
                         {}};
  for (std::size_t w = 0; w < workers_.size(); ++w) {
    std::uint64_t a = 0, c = 0;
    for (std::size_t l = 0; l < listeners_.size(); ++l) {
      a += workers_[w]->accepted[l].get();
      c += workers_[w]->closed[l].get();
    }
    auto metric = labelled({{"worker", std::to_string(w)}});
    metric.gauge.value = a > c ? static_cast<double>(a - c) : 0;
    by_worker.metric.push_back(std::move(metric));
  }
  for (auto* f : {&accepted, &open, &refused, &rejected, &by_worker}) out.push_back(std::move(*f));
}

void Metrics::add_listen_queue_families(std::vector<MetricFamily>& out) const {
  // The listen queues, asked of the kernel now. A listener it will not tell about (another
  // network namespace, netlink not allowed) has no sample: docs/observability.md.
  MetricFamily pending{"printerfacts_listen_queue_pending",
                       "Connections waiting in a listener's queue for accept(), by listener. When "
                       "it reaches the backlog, new connect()s fail at once (nginx: 502).",
                       MetricType::Gauge,
                       {}};
  MetricFamily backlog{"printerfacts_listen_queue_backlog",
                       "The most connections a listener's queue holds, by listener.",
                       MetricType::Gauge,
                       {}};
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    const auto& l = listeners_[i];
    const ino_t inode = inodes_[i].load(std::memory_order_relaxed);
    if (inode == 0) continue;
    const auto queue = l.is_unix ? unix_listen_queue(inode) : tcp_listen_queue(inode);
    if (!queue) continue;
    auto metric = labelled({{"listener", l.name}});
    metric.gauge.value = queue->pending;
    pending.metric.push_back(metric);
    metric.gauge.value = queue->backlog;
    backlog.metric.push_back(std::move(metric));
  }
  out.push_back(std::move(pending));
  out.push_back(std::move(backlog));
}

}  // namespace printerfacts
