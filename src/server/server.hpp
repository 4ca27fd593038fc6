// The server: worker threads with their own event loops, the listeners they accept on, and the
// one place where shutdown happens.
#pragma once

#include <memory>

#include "config/options.hpp"
#include "listeners/listener_set.hpp"
#include "routing/router.hpp"

namespace printerfacts {

/// Runs the service until SIGTERM or SIGINT, then shuts down in a fixed order: stop accepting
/// and remove our socket files, close idle connections, let busy ones finish until
/// --shutdown-timeout, close what is left.
class Server {
 public:
  /// `options` and `router` must outlive the server; the listeners are owned from here on.
  Server(const Options& options, const Router& router, ListenerSet listeners);
  ~Server();

  /// Serves until a termination signal; returns the process exit code (0 after a clean drain).
  int run();

 private:
  struct Worker;
  void start_workers();

  const Options& options_;
  const Router& router_;
  ListenerSet listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace printerfacts
