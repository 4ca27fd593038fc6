// The server: worker threads with their own event loops, the listeners they accept on, and the
// one place where shutdown happens.
#pragma once

#include <memory>

#include "config/options.hpp"
#include "listeners/listener_set.hpp"
#include "metrics/metrics.hpp"
#include "routing/router.hpp"

namespace printerfacts {

/// Runs the service until SIGTERM or SIGINT, then shuts down in a fixed order: stop accepting
/// and remove our socket files, close idle connections, let busy ones finish until
/// --shutdown-timeout, close what is left.
class Server {
 public:
  /// `options`, the routers and `metrics` must outlive the server; the listeners are owned from
  /// here on. `app_router` serves the main listeners, `metrics_router` the metrics listeners.
  /// `metrics` may be null (nothing serves /metrics): then nothing is recorded.
  Server(const Options& options, const Router& app_router, const Router& metrics_router,
         ListenerSet listeners, Metrics* metrics);
  ~Server();

  /// Serves until a termination signal; returns the process exit code (0 after a clean drain).
  int run();

 private:
  struct Worker;
  void start_workers();

  const Options& options_;
  const Router& app_router_;
  const Router& metrics_router_;
  Metrics* metrics_;
  std::vector<uid_t> allowed_uids_;
  std::vector<gid_t> allowed_gids_;
  ListenerSet listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace printerfacts
