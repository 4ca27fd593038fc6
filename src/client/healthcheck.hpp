// `printerfacts healthcheck`: asks a running server for /healthz, for container health checks,
// Kubernetes exec probes and scripts.
#pragma once

#include <chrono>
#include <string>

#include "config/listen_address.hpp"

namespace printerfacts {

/// The outcome of one health check.
struct HealthResult {
  bool healthy = false;
  std::string detail;  ///< "200 ok", or what went wrong, naming the address
};

/// Connects to `address` (a Unix socket, or TCP where "::" and "0.0.0.0" mean loopback), sends
/// GET /healthz and waits up to `timeout` for a 200 answer.
HealthResult check_health(const ListenAddress& address, std::chrono::milliseconds timeout);

}  // namespace printerfacts
