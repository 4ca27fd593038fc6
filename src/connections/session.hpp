// One HTTP/1.x connection: read a request, route it, write the response, repeat. Written once as
// a template over the socket's protocol, so Unix-socket and TCP connections share every line.
#pragma once

#include <chrono>
#include <string>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "connections/session_context.hpp"
#include "routing/response.hpp"

namespace printerfacts {

namespace session_detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

/// The status a request that failed to parse gets, or 0 when the failure leaves nothing to
/// answer (the peer closed, the deadline passed, shutdown closed the socket).
inline unsigned status_for_read_error(const beast::error_code& ec) {
  if (ec == http::error::header_limit) return 431;
  if (ec == http::error::body_limit) return 413;
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) return 0;
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) return 400;
  return 0;
}

template <class Stream, class Body>
asio::awaitable<std::tuple<beast::error_code, std::size_t>> write_message(
    Stream& stream, http::response<Body>& message, bool head_only) {
  http::response_serializer<Body> serializer{message};
  if (head_only) co_return co_await http::async_write_header(stream, serializer, use_tuple);
  co_return co_await http::async_write(stream, serializer, use_tuple);
}

/// Half-closes and then reads what the client may still be sending, for a bounded time, before
/// closing. Closing a socket with unread input makes the kernel send RST, which can destroy the
/// response the client has not read yet (the "lingering close" of nginx and Apache).
template <class Stream>
asio::awaitable<void> close_gracefully(Stream& stream) {
  beast::error_code ec;
  stream.socket().shutdown(asio::socket_base::shutdown_send, ec);
  if (!ec) {
    char sink[4096];
    std::size_t total = 0;
    stream.expires_after(std::chrono::seconds(2));
    while (total < 256 * 1024) {
      auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
      if (rec) break;
      total += n;
    }
  }
  stream.close();
}

}  // namespace session_detail

/// Serves one accepted connection, accepted on listener number `listener`, with `router`, until
/// the peer closes, a deadline passes, a response says "Connection: close", or shutdown closes
/// it. Never throws for anything the peer sends.
template <class Protocol>
boost::asio::awaitable<void> run_session(typename Protocol::socket socket, std::string peer,
                                         SessionContext& ctx, const Router& router,
                                         std::size_t listener) {
  using namespace session_detail;
  using Clock = std::chrono::steady_clock;
  beast::basic_stream<Protocol> stream(std::move(socket));
  ConnectionRegistry::Entry entry(ctx.registry, [&stream] { stream.close(); });
  struct Closed {  // counts the connection as closed however the coroutine ends
    WorkerMetrics* metrics;
    std::size_t listener;
    ~Closed() {
      if (metrics) metrics->closed[listener].add();
    }
  } closed{ctx.metrics, listener};
  const Options& opts = ctx.options;
  beast::flat_buffer buffer;
  bool first = true;

  for (;;) {
    // Wait for the first byte of the next request. The header deadline starts only once it has
    // arrived; until then the connection is idle and shutdown may close it without loss.
    if (buffer.size() == 0) {
      if (ctx.registry.draining()) break;
      entry.idle = true;
      stream.expires_after(first ? opts.header_timeout : opts.idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(1024), use_tuple);
      entry.idle = false;
      if (ec) break;
      buffer.commit(n);
    }
    first = false;
    const auto started = Clock::now();
    if (ctx.metrics) ctx.metrics->request_started();

    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(opts.max_header_size));
    parser.body_limit(opts.max_body_size);
    stream.expires_after(opts.header_timeout);
    auto [read_ec, read_n] = co_await http::async_read(stream, buffer, parser, use_tuple);

    Response res;
    if (read_ec) {
      const unsigned status = status_for_read_error(read_ec);
      if (status == 0) {
        if (ctx.metrics) ctx.metrics->finished.add();  // abandoned: no longer in flight
        break;
      }
      res = Router::error(static_cast<http::status>(status), 11);
    } else {
      res = router.route(parser.get(), ctx.rng);
    }
    if (ctx.registry.draining()) res.keep_alive(false);
    std::visit([&](auto& m) { m.set(http::field::date, ctx.date.now()); }, res.message);

    stream.expires_after(opts.send_timeout);
    auto [write_ec, written] = co_await std::visit(
        [&](auto& m) { return write_message(stream, m, res.head_only); }, res.message);

    const auto took = Clock::now() - started;
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
      co_await close_gracefully(stream);
      co_return;
    }
  }
  stream.close();
}

}  // namespace printerfacts
