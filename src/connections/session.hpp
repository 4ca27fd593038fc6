// One HTTP/1.x connection: read a request, route it, write the response, repeat. Written once as
// a template over the socket's protocol, so Unix-socket and TCP connections share every line.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "connections/request_parser.hpp"
#include "connections/session_context.hpp"
#include "routing/response.hpp"
#include "util/line_writer.hpp"

namespace printerfacts {

namespace session_detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
/// Every connection runs on its worker's io_context, named by its concrete executor type: the
/// type-erased any_io_executor would cost a virtual dispatch and executor copies per operation.
using Executor = asio::io_context::executor_type;
/// The connection socket of `Protocol`, on that executor.
template <class Protocol>
using Socket = typename Protocol::socket::template rebind_executor<Executor>::other;
/// A connection's coroutine, on that executor.
template <class T = void>
using Task = asio::awaitable<T, Executor>;
inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable_t<Executor>());

/// The most a connection asks the kernel for in one read. With the head limit it bounds the
/// connection's read buffer (see run_session).
inline constexpr std::size_t kReadChunk = 4096;

/// What `buffer` holds, as characters.
inline std::string_view buffered(const beast::flat_buffer& buffer) {
  return {static_cast<const char*>(buffer.cdata().data()), buffer.size()};
}

/// The status a request that failed to parse gets, or 0 when the failure leaves nothing to
/// answer (the peer closed, the deadline passed, shutdown closed the socket).
inline unsigned status_for_read_error(const beast::error_code& ec, const Request& partial) {
  if (ec == http::error::header_limit) {
    // Too long a head: 414 when the request line alone did not fit (the parser never got to
    // record a target), 431 when the fields did not.
    return partial.target().empty() ? 414 : 431;
  }
  if (ec == http::error::body_limit) return 413;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return 0;
  // Every other parse error, and buffer_overflow: a chunk-size line, chunk extension or
  // trailer section that outgrew the read buffer (the limit that bounds them).
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) return 400;
  return 0;
}

/// Reads the rest of a request head into `buffer` and has `parser` parse it as it arrives.
/// Returns the parser's verdict (no error once the head is complete), or the socket's own error
/// (end of stream, the deadline closing the socket).
template <class Stream>
Task<beast::error_code> read_head(Stream& socket, beast::flat_buffer& buffer, RequestParser& parser) {
  for (;;) {
    // Beast refuses a head that outgrows its limit (header_limit) before the buffer, which has
    // room for the limit and one read more, is full.
    const std::size_t room = std::min(kReadChunk, buffer.max_size() - buffer.size());
    if (room == 0) co_return http::error::header_limit;
    auto [ec, n] = co_await socket.async_read_some(buffer.prepare(room), use_tuple);
    if (ec) co_return ec;
    buffer.commit(n);
    beast::error_code parse_ec;
    buffer.consume(parser.put_head(buffered(buffer), parse_ec));
    if (parse_ec != http::error::need_more) co_return parse_ec;
  }
}

/// Writes the status line, the fixed head, the Date, the header fields of `m` and its
/// Content-Length into `out`, as they go on the wire. Beast's serializer does the same through
/// several layers of buffer sequence adaptors; rendering the head into one reused string is
/// several times cheaper, and the body is then sent from where it lies, in the same writev.
template <class Message>
void render_head(const Message& m, std::string_view fixed_head, std::string_view date, std::string& out) {
  const std::string_view reason = m.reason();
  std::size_t worst = 64 + reason.size() + fixed_head.size() + date.size();
  for (const auto& field : m) worst += field.name_string().size() + field.value().size() + 4;
  out.resize(worst);  // capacity stays between requests: no allocation once warm
  LineWriter w(out.data());
  const unsigned v = m.version();
  const unsigned code = m.result_int();
  w << "HTTP/" << static_cast<char>('0' + v / 10) << '.' << static_cast<char>('0' + v % 10) << ' ';
  w.digits3(code) << ' ' << reason << "\r\n" << fixed_head << "Date: " << date << "\r\n";
  for (const auto& field : m) w << field.name_string() << ": " << field.value() << "\r\n";
  if (const auto length = rendered_content_length(m)) {
    w << "Content-Length: ";
    w.number(*length) << "\r\n";
  }
  w << "\r\n";
  out.resize(static_cast<std::size_t>(w.end() - out.data()));
}

/// Sends a response whose body streams from a file, through Beast's serializer, which reads and
/// sends it in chunks.
template <class Stream>
Task<std::tuple<beast::error_code, std::size_t>> write_file(Stream& socket, FileResponse& message,
                                                            bool head_only, std::string_view date) {
  message.set(http::field::date, date);
  http::response_serializer<http::file_body, Fields> serializer{message};
  if (head_only) co_return co_await http::async_write_header(socket, serializer, use_tuple);
  co_return co_await http::async_write(socket, serializer, use_tuple);
}

/// Renders the head of an in-memory response into `head` and returns what goes on the wire:
/// the head, then the body from where it lies (nothing for HEAD).
template <class Body>
std::array<asio::const_buffer, 2> wire_buffers(const http::response<Body, Fields>& message,
                                               bool head_only, std::string_view fixed_head,
                                               std::string_view date, std::string& head) {
  render_head(message, fixed_head, date, head);
  const auto& body = message.body();
  return {asio::buffer(head), head_only ? asio::const_buffer() : asio::buffer(body.data(), body.size())};
}

/// Half-closes and then reads what the client may still be sending, for a bounded time, before
/// closing. Closing a socket with unread input makes the kernel send RST, which can destroy the
/// response the client has not read yet (the "lingering close" of nginx and Apache).
template <class Stream>
Task<> close_gracefully(Stream& socket, ConnectionRegistry::Entry& entry) {
  beast::error_code ec;
  socket.shutdown(asio::socket_base::shutdown_send, ec);
  if (!ec) {
    char sink[4096];
    std::size_t total = 0;
    entry.expires_after(std::chrono::seconds(2));
    while (total < 256 * 1024) {
      auto [rec, n] = co_await socket.async_read_some(asio::buffer(sink), use_tuple);
      if (rec) break;
      total += n;
    }
  }
  socket.close(ec);
}

}  // namespace session_detail

/// Serves one accepted connection, accepted on listener number `listener` (a metrics-only one
/// when `metrics_listener`), with the worker's current Site for each request, until
/// the peer closes, a deadline passes, a response says "Connection: close", or shutdown closes
/// it. Never throws for anything the peer sends.
template <class Protocol>
session_detail::Task<> run_session(session_detail::Socket<Protocol> socket, std::string peer,
                                   SessionContext& ctx, bool metrics_listener, std::size_t listener) {
  using namespace session_detail;
  using Clock = std::chrono::steady_clock;
  ConnectionRegistry::Entry entry(ctx.registry, [&socket](ConnectionRegistry::Stop how) {
    beast::error_code ignored;
    if (how == ConnectionRegistry::Stop::wake) {
      socket.cancel(ignored);
    } else {
      socket.close(ignored);
    }
  });
  struct Closed {  // counts the connection as closed however the coroutine ends
    WorkerMetrics* metrics;
    std::size_t listener;
    ~Closed() {
      if (metrics) metrics->closed[listener].add();
    }
  } closed{ctx.metrics, listener};
  const Options& opts = ctx.options;
  beast::error_code nb_ec;
  socket.non_blocking(true, nb_ec);  // for the write-now fast path below
  // Everything a connection reads goes through this buffer, and its maximum is the bound on
  // what a client can make the server hold for it, whatever it sends and however slowly: a head
  // may fill it up to the header limit, and the body is parsed out of it and dropped
  // (DiscardedBody). A chunk-size line, chunk extension or trailer section that does not fit
  // ends the request with 400 (Beast sets no limit of its own on them).
  beast::flat_buffer buffer(opts.max_header_size + kReadChunk);
  std::string head;  // the response head, rendered here; reused by every response
  bool first = true;

  for (;;) {
    // Wait for the first byte of the next request. The header deadline starts only once it has
    // arrived; until then a keep-alive connection is idle and shutdown may close it without
    // loss (a client must expect that between requests). A connection that has not sent its
    // first request is not idle: its client connected in order to send one, which may be on its
    // way (connect() returns before the request is written). It is waited for, even while
    // draining, under the header timeout and the shutdown deadline; closing it instead would fail
    // that request, as systemd's restarts showed.
    if (buffer.size() == 0) {
      if (first || !ctx.registry.draining()) {
        entry.idle = !first;
        entry.expires_after(first ? opts.header_timeout : opts.idle_timeout);
        auto [ec, n] = co_await socket.async_read_some(buffer.prepare(1024), use_tuple);
        entry.idle = false;
        if (!ec) {
          buffer.commit(n);
        } else if (ec != asio::error::operation_aborted || !ctx.registry.draining()) {
          break;
        }
      }
      if (buffer.size() == 0) {
        // Shutting down. A request that has already arrived is still answered (with
        // "Connection: close"); otherwise the connection ends the graceful way, so a request
        // that crosses our FIN meets an orderly end of stream, never a reset.
        beast::error_code ec;
        const std::size_t n = socket.read_some(buffer.prepare(1024), ec);  // non-blocking
        if (ec) {
          co_await close_gracefully(socket, entry);
          co_return;
        }
        buffer.commit(n);
      }
    }
    first = false;
    // RFC 9112 §2.2: a server SHOULD ignore empty lines received before a request line (some
    // clients send a CRLF after a POST body).
    for (int i = 0; i < 4 && buffer.size() >= 2; ++i) {
      const auto* p = static_cast<const char*>(buffer.cdata().data());
      if (p[0] != '\r' || p[1] != '\n') break;
      buffer.consume(2);
    }
    if (buffer.size() == 0) continue;
    // The exact clock is read only when someone records the duration.
    const bool timed = ctx.metrics != nullptr || ctx.access_log.has_value();
    const auto started = timed ? Clock::now() : Clock::time_point();
    if (ctx.metrics) ctx.metrics->request_started();

    // The request's fields, and its response's, live in an arena that gives its memory back to
    // the worker's pool when this iteration ends: no malloc per request, nothing held while idle.
    Arena arena(ctx.blocks);
    RequestParser parser(arena);
    // The response may point into the site's content: it must outlive the write even if a
    // reload replaces the worker's site meanwhile.
    const std::shared_ptr<const Site> site = ctx.site;
    parser.header_limit(static_cast<std::uint32_t>(opts.max_header_size));
    parser.body_limit(opts.max_body_size);
    entry.expires_after(opts.header_timeout);

    // The head first: a request whose framing cannot be trusted is refused before its body is
    // read, and a client that asked for 100-continue gets it before sending the body.
    // Usually the whole head is in the buffer already: it is parsed in place, and the
    // connection goes back to the event loop only when more bytes are needed.
    beast::error_code read_ec;
    buffer.consume(parser.put_head(buffered(buffer), read_ec));
    if (read_ec == http::error::need_more) read_ec = co_await read_head(socket, buffer, parser);
    std::optional<http::status> refused;
    if (!read_ec && !parser.is_done()) {
      // A body follows: its framing is checked before it is read (the router checks every
      // request again; for the usual bodiless ones that is the only check).
      refused = check_request(parser.get());
      if (!refused) {
        const auto& request_head = parser.get();
        if (request_head.version() >= 11 &&
            beast::iequals(request_head[http::field::expect], "100-continue")) {
          static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
          std::tie(read_ec, std::ignore) =
              co_await asio::async_write(socket, asio::buffer(kContinue), use_tuple);
          if (read_ec) break;
        }
        std::tie(read_ec, std::ignore) = co_await http::async_read(socket, buffer, parser, use_tuple);
      }
    }

    const unsigned read_status = read_ec ? status_for_read_error(read_ec, parser.get()) : 0;
    if (read_ec && read_status == 0) {
      if (ctx.metrics) ctx.metrics->finished.add();  // abandoned: no longer in flight
      break;
    }
    // Built in place (no move-assignment of the message variant on every request).
    Response res = read_ec   ? Router::error(static_cast<http::status>(read_status), 11)
                   : refused ? Router::error(*refused, parser.get().version() == 10 ? 10 : 11)
                             : site->router(metrics_listener).route(parser.get(), ctx.rng);
    if (ctx.registry.draining()) res.keep_alive(false);

    entry.expires_after(opts.send_timeout);
    beast::error_code write_ec;
    std::size_t written = 0;
    if (auto* file = std::get_if<FileResponse>(&res.message)) {
      std::tie(write_ec, written) = co_await write_file(socket, *file, res.head_only, ctx.date.now());
    } else {
      const auto buffers = std::visit(
          [&](const auto& m) -> std::array<asio::const_buffer, 2> {
            if constexpr (std::is_same_v<std::decay_t<decltype(m)>, FileResponse>) {
              return {};
            } else {
              return wire_buffers(m, res.head_only, res.fixed_head, ctx.date.now(), head);
            }
          },
          res.message);
      // A response almost always fits the socket's send buffer: write it now, without
      // suspending the coroutine or a trip through the event loop, and wait only for what did
      // not fit (the socket is non-blocking).
      written = socket.write_some(buffers, write_ec);
      if (write_ec == asio::error::would_block) write_ec = {};
      if (!write_ec && written < asio::buffer_size(buffers)) {
        beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(buffers);
        rest.consume(written);
        auto [ec, more] = co_await asio::async_write(socket, rest, use_tuple);
        write_ec = ec;
        written += more;
      }
    }

    const auto took = timed ? Clock::now() - started : Clock::duration();
    const auto& req = parser.get();
    const bool have_head = parser.is_header_done();
    if (ctx.metrics) {
      ctx.metrics->request_finished(res.route, have_head ? req.method() : http::verb::unknown,
                                    res.status(), written, took);
    }
    if (ctx.access_log) {
      ctx.access_log->record(AccessRecord{
          peer, have_head ? std::string_view(req.method_string()) : std::string_view("-"),
          have_head ? std::string_view(req.target()) : std::string_view("-"),
          have_head ? req.version() : 11u, res.status(), written, took});
    }
    if (write_ec) break;
    if (!res.keep_alive()) {
      co_await close_gracefully(socket, entry);
      co_return;
    }
  }
  beast::error_code ignored;
  socket.close(ignored);
}

}  // namespace printerfacts
