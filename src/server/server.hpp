// The server: worker threads with their own event loops, the listeners they accept on, and the
// one place where shutdown happens.
#pragma once

#include <unistd.h>

#include <functional>
#include <memory>
#include <string>

#include "config/options.hpp"
#include "connections/site.hpp"
#include "listeners/listener_set.hpp"
#include "log/access_log.hpp"
#include "metrics/metrics.hpp"

namespace printerfacts {

/// What a reload switches to.
struct Reloaded {
  std::shared_ptr<const Site> site;
  std::string summary;    ///< for the log: "64 facts, static files from ..., log level info"
  std::string log_level;  ///< applied once the reload is logged, at the old level
};

/// Builds what a reload switches to, from the configuration read again; throws (a StartupError
/// saying why) to keep the running one.
using Reloader = std::function<Reloaded()>;

/// Runs the service until SIGTERM or SIGINT, reloading on SIGHUP, then shuts down in a fixed
/// order: answer /healthz with 503 for --shutdown-delay, stop accepting and remove our socket
/// files, close idle connections, let busy ones finish until --shutdown-timeout, close the rest.
class Server {
 public:
  /// `options`, `health` and `metrics` must outlive the server; the listeners are owned from
  /// here on. `site` serves the first requests, and `reload` makes each later one on SIGHUP.
  /// `metrics` may be null (nothing serves /metrics): then nothing is recorded.
  Server(const Options& options, ListenerSet listeners, Metrics* metrics, Health& health,
         std::shared_ptr<const Site> site, Reloader reload);
  ~Server();

  /// Serves until a termination signal; returns the process exit code (0 after a clean drain).
  int run();

 private:
  struct Worker;
  void start_workers();
  void reload();

  const Options& options_;
  Metrics* metrics_;
  Health& health_;
  std::shared_ptr<const Site> site_;
  Reloader reload_;
  AccessLogSink stdout_sink_{STDOUT_FILENO};  ///< where every worker's access log goes
  ListenerSet listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace printerfacts
