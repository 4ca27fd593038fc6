// The statistics one worker thread keeps about its requests and connections.
#pragma once

#include <array>
#include <atomic>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

#include "routing/response.hpp"

namespace printerfacts {

/// A counter with a single writer: the owning worker adds with a plain load and store (no
/// read-modify-write, no lock, no cache line shared with another writer); the scraping thread
/// reads it at any time and sees a recent value.
class LocalCounter {
 public:
  void add(std::uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// Upper bounds of the request duration histogram, in seconds. A /fact answer takes tens of
/// microseconds, so the buckets start at 50 µs; the last finite one catches pathological cases.
inline constexpr std::array<double, 12> kDurationBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5};

/// The status codes counted individually; anything else counts as "other".
inline constexpr std::array<unsigned, 11> kStatusCodes = {200, 304, 400, 404, 405, 408,
                                                          413, 414, 431, 500, 503};
inline constexpr std::size_t kStatusSlots = kStatusCodes.size() + 1;
inline constexpr std::array<std::string_view, 3> kMethodLabels = {"GET", "HEAD", "other"};

/// Why a connection was closed unanswered, beyond the allow-lists and the connection limit
/// (printerfacts_connections_refused_total{reason}).
enum class Refusal : std::uint8_t {
  uid_quota,        ///< its peer user holds --max-connections-per-uid already
  proxy_missing,    ///< a --proxy-protocol peer sent no PROXY header
  proxy_malformed,  ///< ...a malformed one
  proxy_truncated,  ///< ...one cut short (closed, or --header-timeout passed)
  proxy_oversized,  ///< ...one longer than the bound (kMaxProxyHeader)
};
inline constexpr std::array<std::string_view, 5> kRefusalLabels = {
    "uid_quota", "proxy_missing", "proxy_malformed", "proxy_truncated", "proxy_oversized"};

/// Everything one worker records. Written only by its worker thread; read by the scraper.
/// Aligned so that two workers' statistics never share a cache line.
struct alignas(64) WorkerMetrics {
  explicit WorkerMetrics(std::size_t listeners)
      : accepted(std::make_unique<LocalCounter[]>(listeners)),
        closed(std::make_unique<LocalCounter[]>(listeners)),
        rejected(std::make_unique<LocalCounter[]>(listeners)),
        over_limit(std::make_unique<LocalCounter[]>(listeners)),
        refused(std::make_unique<std::array<LocalCounter, kRefusalLabels.size()>[]>(listeners)) {}

  /// A connection of listener `listener` was closed unanswered for `why`.
  void refuse(std::size_t listener, Refusal why) {
    refused[listener][static_cast<std::size_t>(why)].add();
  }

  /// A request's first byte arrived.
  void request_started() { started.add(); }

  /// A response was written (or failed to be).
  void request_finished(Route route, boost::beast::http::verb method, unsigned status,
                        std::uint64_t bytes, std::chrono::nanoseconds took);

  std::array<std::array<std::array<LocalCounter, kStatusSlots>, kMethodLabels.size()>, kRouteCount>
      requests;
  /// Per route: count per bucket (not cumulative; the scraper sums), and beyond the last bucket.
  std::array<std::array<LocalCounter, kDurationBuckets.size() + 1>, kRouteCount> duration_buckets;
  std::array<LocalCounter, kRouteCount> duration_sum_ns;
  LocalCounter started;
  LocalCounter finished;
  LocalCounter bytes_sent;
  LocalCounter forwarded_ignored;  ///< a client header from a peer not trusted to send one
  std::unique_ptr<LocalCounter[]> accepted;    ///< per listener
  std::unique_ptr<LocalCounter[]> closed;      ///< per listener
  std::unique_ptr<LocalCounter[]> rejected;    ///< per listener: peer credentials not allowed
  std::unique_ptr<LocalCounter[]> over_limit;  ///< per listener: closed at the connection limit
  /// Per listener, per Refusal.
  std::unique_ptr<std::array<LocalCounter, kRefusalLabels.size()>[]> refused;
};

}  // namespace printerfacts
