// What the router answers: one of three Beast message types, and how to send it.
#pragma once

#include <boost/beast/core/string.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "routing/request.hpp"

namespace printerfacts {

using StringResponse = http::response<http::string_body, Fields>;  ///< rendered per request
using SpanResponse =
    http::response<http::span_body<const char>, Fields>;       ///< points at immutable data
using FileResponse = http::response<http::file_body, Fields>;  ///< streamed from --static-dir

/// Which route answered a request: a label for metrics and a key for per-route statistics.
enum class Route : std::uint8_t {
  index,
  fact,
  static_file,
  healthz,
  metrics,
  not_found,
  bad_request
};
inline constexpr std::size_t kRouteCount = 7;

/// The route's name as metrics label it ("index", "fact", "static", ...).
constexpr std::string_view route_name(Route r) {
  constexpr std::string_view kNames[kRouteCount] = {"index",   "fact",      "static",     "healthz",
                                                    "metrics", "not_found", "bad_request"};
  return kNames[static_cast<std::size_t>(r)];
}

/// The Content-Length of a response with an in-memory body: its size. The connection renders it
/// straight into the head (session_detail::render_head) instead of storing it as a field, which
/// would cost a tree insertion per request. None for statuses without content (1xx, 204, 304)
/// and for file bodies, whose field prepare_payload() sets for Beast's serializer.
template <class Message>
std::optional<std::uint64_t> rendered_content_length(const Message& m) {
  if constexpr (std::is_same_v<typename Message::body_type, http::file_body>) {
    return std::nullopt;
  } else {
    const unsigned status = m.result_int();
    if (status < 200 || status == 204 || status == 304) return std::nullopt;
    return m.body().size();
  }
}

/// A complete answer to one request. The body types avoid copies: facts and embedded assets are
/// sent straight from memory that outlives every connection, files from their descriptor.
struct Response {
  std::variant<StringResponse, SpanResponse, FileResponse> message;
  /// Send the header only (HEAD), with the Content-Length the body would have had.
  bool head_only = false;
  /// The route that answered.
  Route route = Route::bad_request;
  /// Header lines that are the same for every response of its kind ("Name: value\r\n"...),
  /// rendered once at compile time and sent before the message's own fields. Setting them as
  /// fields would cost an allocation and a tree insertion each, per request.
  std::string_view fixed_head;

  /// The value of header `name` (case-insensitive), from the fields or the fixed head; empty
  /// when absent. For tests and diagnostics, not the hot path.
  std::string header(std::string_view name) const {
    if (boost::beast::iequals(name, "content-length")) {
      const auto length =
          std::visit([](const auto& m) { return rendered_content_length(m); }, message);
      if (length) return std::to_string(*length);
    }
    const std::string from_fields = std::visit(
        [name](const auto& m) {
          const auto it = m.find(name);
          return it == m.end() ? std::string() : std::string(it->value());
        },
        message);
    if (!from_fields.empty()) return from_fields;
    for (std::string_view rest = fixed_head; !rest.empty();) {
      const auto eol = rest.find("\r\n");
      const std::string_view line = rest.substr(0, eol);
      rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 2);
      const auto colon = line.find(':');
      if (colon != std::string_view::npos && boost::beast::iequals(line.substr(0, colon), name)) {
        return std::string(line.substr(colon + 2));
      }
    }
    return {};
  }

  unsigned status() const {
    return std::visit([](const auto& m) { return m.result_int(); }, message);
  }
  bool keep_alive() const {
    return std::visit([](const auto& m) { return m.keep_alive(); }, message);
  }
  void keep_alive(bool on) {
    std::visit([on](auto& m) { m.keep_alive(on); }, message);
  }
  /// The Content-Length of the response (what a GET would send as body).
  std::uint64_t content_length() const {
    return std::visit(
        [](const auto& m) -> std::uint64_t {
          if (const auto length = rendered_content_length(m)) return *length;
          const auto it = m.find(http::field::content_length);
          if (it == m.end()) return 0;
          std::uint64_t n = 0;
          for (const char c : it->value()) n = n * 10 + static_cast<unsigned>(c - '0');
          return n;
        },
        message);
  }
};

}  // namespace printerfacts
