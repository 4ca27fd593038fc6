// Routing: a pure function from a parsed request to a response. No sockets, no clocks; the
// randomness is injected, so every route is tested in-process.
#pragma once

#include <atomic>
#include <optional>

#include "app/facts.hpp"
#include "app/random.hpp"
#include "app/static_files.hpp"
#include "routing/response.hpp"

namespace printerfacts {

/// What the router serves from. Owned by the server; outlives every connection.
struct Content {
  Facts facts;
  StaticFiles static_files;
};

/// Whether routing reads the request header field `f`: check_request, Router::route and the
/// connection's 100-continue and keep-alive decisions look at no other. A connection's parser
/// stores only these and the few the connection reads itself (identity_field, in
/// connections/request_identity.hpp); the rest are still validated and counted, then dropped,
/// so a request with many fields costs little more than one with few. A route that reads
/// another field must add it here.
constexpr bool reads_field(http::field f) {
  switch (f) {
    case http::field::host:
    case http::field::content_length:
    case http::field::transfer_encoding:
    case http::field::connection:
    case http::field::expect:
    case http::field::if_none_match:
      return true;
    default:
      return false;
  }
}

/// A request that RFC 9110/9112 says must be refused before it is routed, and with what status.
/// Returns std::nullopt for a request that may be routed.
std::optional<http::status> check_request(const Request& req);

/// True when the If-None-Match header value `if_none_match` matches `etag` under the weak
/// comparison RFC 9110 §13.1.2 prescribes ("*" matches anything).
bool etag_matches(std::string_view if_none_match, std::string_view etag);

/// Renders the metrics exposition for GET /metrics. Implemented by the metrics layer and
/// injected, so routing depends on no metrics library and tests can supply fixed text.
class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  /// The Prometheus text exposition format (version 0.0.4). Safe to call from any thread.
  virtual std::string render() const = 0;
};

/// Whether the process is on its way out: after SIGTERM it keeps serving for --shutdown-delay
/// while /healthz answers 503, so that load balancers and Kubernetes stop sending it requests
/// before it stops accepting them. And whether a socket path of ours holds something else, so
/// that no client can reach us there (the socket guard): /healthz answers 503 until it is ours
/// again. Set by the server; read by every worker thread.
class Health {
 public:
  void leave() { leaving_.store(true, std::memory_order_relaxed); }
  bool leaving() const { return leaving_.load(std::memory_order_relaxed); }
  void set_socket_lost(bool lost) { socket_lost_.store(lost, std::memory_order_relaxed); }
  bool socket_lost() const { return socket_lost_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> leaving_{false};
  std::atomic<bool> socket_lost_{false};
};

/// Maps requests to responses. Immutable; one instance shared by all worker threads.
class Router {
 public:
  /// `metrics`, if not null, is served at /metrics. With `serve_app` false only /healthz and
  /// /metrics exist: the router of a metrics-only listener. `health`, if not null, decides
  /// whether /healthz answers 200 or 503; it must outlive the router.
  explicit Router(const Content& content, const MetricsSource* metrics = nullptr,
                  bool serve_app = true, const Health* health = nullptr)
      : content_(content), metrics_(metrics), serve_app_(serve_app), health_(health) {}

  /// The response to `req`. Never throws for any request a parser accepted; `rng` picks facts.
  Response route(const Request& req, Random& rng) const;

  /// An error response (400, 408, 413, 431, ...) for a request that could not be parsed or was
  /// refused; it closes the connection.
  static Response error(http::status status, unsigned version);

 private:
  const Content& content_;
  const MetricsSource* metrics_;
  bool serve_app_;
  const Health* health_;
};

}  // namespace printerfacts
