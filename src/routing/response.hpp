// What the router answers, and the one form in which it goes on the wire.
//
// A response has a kind (plain text, an HTML page, the metrics exposition, an asset...) that
// fixes the header lines every response of the kind carries; those are declared once each, as
// data, and rendered into wire form at compile time (ResponseKind). What varies per response
// (the status, an asset's type and ETag, Allow) is a Beast field. Response::render_head writes
// the status line, the kind's lines, the Date, the fields and the Content-Length: the very bytes
// a connection sends, and what tests read.
#pragma once

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "routing/request.hpp"
#include "util/line_writer.hpp"

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

/// One header line that every response of a kind carries.
struct HeaderLine {
  std::string_view name;
  std::string_view value;
};

/// Header lines rendered as they go on the wire ("Name: value\r\n" each), at compile time.
template <std::size_t N>
struct RenderedLines {
  std::array<char, N> text{};
  constexpr std::string_view view() const { return {text.data(), N}; }
};

/// The size of the lines of every group in `Groups` (arrays of HeaderLine), rendered.
template <const auto&... Groups>
consteval std::size_t rendered_size() {
  std::size_t total = 0;
  (
      [&] {
        for (const HeaderLine& line : Groups) total += line.name.size() + line.value.size() + 4;
      }(),
      ...);
  return total;
}

/// Renders the lines of every group in `Groups`, in order.
template <const auto&... Groups>
consteval auto render_lines() {
  RenderedLines<rendered_size<Groups...>()> out;
  std::size_t at = 0;
  const auto put = [&](std::string_view s) {
    for (const char c : s) out.text[at++] = c;
  };
  (
      [&] {
        for (const HeaderLine& line : Groups) {
          put(line.name);
          put(": ");
          put(line.value);
          put("\r\n");
        }
      }(),
      ...);
  return out;
}

/// A kind of response: the header lines, in wire form, that every response of the kind sends
/// before its own fields. Sending them as Beast fields would cost an allocation and a tree
/// insertion each, per request.
struct ResponseKind {
  std::string_view lines;
};

/// The Content-Length of a message: the size of its body (a file's too). None for statuses
/// that have no content (1xx, 204, 304). It is rendered straight into the head rather than
/// stored as a field, which would cost a tree insertion per request.
template <class Message>
std::optional<std::uint64_t> rendered_content_length(const Message& m) {
  const unsigned status = m.result_int();
  if (status < 200 || status == 204 || status == 304) return std::nullopt;
  return m.body().size();
}

/// Writes the head of `m`, a response of `kind`, into `out` as it goes on the wire: the status
/// line, the kind's lines, the Date, the lines the connection adds (`connection_lines`, in wire
/// form: the X-Request-Id), the fields of `m` and the Content-Length. Rendering into
/// one reused string is several times cheaper than Beast's serializer with its layers of buffer
/// sequence adaptors; the body is then sent from where it lies, in the same writev.
template <class Message>
void render_head(const Message& m, const ResponseKind& kind, std::string_view date,
                 std::string_view connection_lines, std::string& out) {
  const std::string_view reason = m.reason();
  // "HTTP/1.1 200 " + reason + CRLF, "Date: " + CRLF, "Content-Length: " + 20 digits + CRLF,
  // the blank line: 64 covers them with room to spare.
  // LineWriter checks it in debug builds.
  std::size_t worst =
      64 + reason.size() + kind.lines.size() + date.size() + connection_lines.size();
  for (const auto& field : m) worst += field.name_string().size() + field.value().size() + 4;
  out.resize(worst);  // capacity stays between requests: no allocation once warm
  LineWriter w(out.data(), out.data() + out.size());
  const unsigned v = m.version();
  w << "HTTP/" << static_cast<char>('0' + v / 10) << '.' << static_cast<char>('0' + v % 10) << ' ';
  w.digits3(m.result_int()) << ' ' << reason << "\r\n" << kind.lines << "Date: " << date << "\r\n";
  w << connection_lines;
  for (const auto& field : m) w << field.name_string() << ": " << field.value() << "\r\n";
  if (const auto length = rendered_content_length(m)) {
    w << "Content-Length: ";
    w.number(*length) << "\r\n";
  }
  w << "\r\n";
  out.resize(static_cast<std::size_t>(w.end() - out.data()));
}

/// A complete answer to one request. The body types avoid copies: facts and embedded assets are
/// sent straight from memory that outlives every connection, files from their descriptor.
/// Built by the router's one constructor of responses (router.cpp, `respond`).
struct Response {
  std::variant<StringResponse, SpanResponse, FileResponse> message;
  /// Send the head only (HEAD), with the Content-Length the body would have had.
  bool head_only = false;
  /// The route that answered.
  Route route = Route::bad_request;
  /// The header lines its kind sends.
  ResponseKind kind;

  unsigned status() const {
    return std::visit([](const auto& m) { return m.result_int(); }, message);
  }
  bool keep_alive() const {
    return std::visit([](const auto& m) { return m.keep_alive(); }, message);
  }
  void keep_alive(bool on) {
    std::visit([on](auto& m) { m.keep_alive(on); }, message);
  }

  /// Renders the head into `out` (see render_head above).
  void render_head(std::string_view date, std::string_view connection_lines,
                   std::string& out) const {
    std::visit(
        [&](const auto& m) { printerfacts::render_head(m, kind, date, connection_lines, out); },
        message);
  }

  /// The body to send after the head when it lies in memory: empty for HEAD, and for a file,
  /// whose body is read from its descriptor (file()).
  boost::asio::const_buffer body_in_memory() const {
    if (head_only) return {};
    return std::visit(
        [](const auto& m) -> boost::asio::const_buffer {
          if constexpr (std::is_same_v<std::decay_t<decltype(m)>, FileResponse>) {
            return {};
          } else {
            return {m.body().data(), m.body().size()};
          }
        },
        message);
  }

  /// The file to send after the head, or null (in-memory body, or HEAD).
  FileResponse* file() { return head_only ? nullptr : std::get_if<FileResponse>(&message); }
};

}  // namespace printerfacts
