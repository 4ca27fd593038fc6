// What every connection of one worker thread shares: the site, limits, and per-thread state.
#pragma once

#include <optional>

#include "app/random.hpp"
#include "config/options.hpp"
#include "connections/connection_registry.hpp"
#include "connections/http_date.hpp"
#include "connections/site.hpp"
#include "log/access_log.hpp"
#include "metrics/worker_metrics.hpp"
#include "util/arena.hpp"
#include "util/throttled_warning.hpp"

namespace printerfacts {

/// One per worker thread. Only that thread touches it, so nothing here is locked.
struct SessionContext {
  const Options& options;
  /// What requests are served with, a handle of this worker's own (worker_local); a reload
  /// replaces it, and each request holds the one it started with until it is answered.
  std::shared_ptr<const Site> site;
  Random rng;
  std::optional<AccessLog> access_log;  ///< empty with --access-log off
  ConnectionRegistry registry;
  HttpDate date;
  WorkerMetrics* metrics = nullptr;  ///< null when nothing serves /metrics: nothing is recorded
  BlockPool blocks;  ///< memory for the header fields of requests in flight (util/arena.hpp)
  ThrottledWarning proxy_refused;  ///< a --proxy-protocol peer's connection closed unanswered
};

}  // namespace printerfacts
