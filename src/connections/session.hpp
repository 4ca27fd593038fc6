// One HTTP/1.x connection: read a request, route it, write the response, repeat. Written once as
// a template over the connected socket, so Unix-socket and TCP connections (and the unit tests'
// socket pairs) share every line.
#pragma once

#include <sys/ioctl.h>

#include <algorithm>
#include <array>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "connections/connection_budget.hpp"
#include "connections/executor.hpp"
#include "connections/peer.hpp"
#include "connections/proxy_protocol.hpp"
#include "connections/reactor_hints.hpp"
#include "connections/request_identity.hpp"
#include "connections/request_parser.hpp"
#include "connections/session_context.hpp"
#include "routing/response.hpp"

namespace printerfacts {

namespace session {

namespace asio = boost::asio;
namespace beast = boost::beast;

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
Task<beast::error_code> read_head(Stream& socket, beast::flat_buffer& buffer,
                                  RequestParser& parser) {
  for (;;) {
    // Beast refuses a head that outgrows its limit (header_limit) before the buffer, which has
    // room for the limit and one read more, is full.
    const std::size_t room = std::min(kReadChunk, buffer.max_size() - buffer.size());
    if (room == 0) co_return http::error::header_limit;
    auto [ec, n] = co_await socket.async_read_some(buffer.prepare(room), use_tuple);
    if (ec) co_return ec;
    if (n < room) note_drained(socket);
    buffer.commit(n);
    beast::error_code parse_ec;
    buffer.consume(parser.put_head(buffered(buffer), parse_ec));
    if (parse_ec != http::error::need_more) co_return parse_ec;
  }
}

/// Reads the rest of a request's body into `parser`, which drops it, as it arrives. Returns the
/// parser's verdict (no error once the request is complete), or the socket's own error. Beast's
/// http::async_read would do the same, except that it reads on after a chunk-size line whose
/// quoted extension value is never closed (chunk_line_ends_in_quotes).
template <class Stream>
Task<beast::error_code> read_body(Stream& socket, beast::flat_buffer& buffer,
                                  RequestParser& parser) {
  parser.eager(true);
  for (;;) {
    beast::error_code ec;
    if (buffer.size() > 0) buffer.consume(parser.put(buffer.cdata(), ec));
    if (parser.is_done()) co_return beast::error_code{};
    if (ec && ec != http::error::need_more) co_return ec;
    if (parser.chunked() && chunk_line_ends_in_quotes(buffered(buffer)))
      co_return http::error::bad_chunk_extension;
    // The buffer's bound is the bound on a chunk-size line, extension or trailer section.
    const std::size_t room = std::min(kReadChunk, buffer.max_size() - buffer.size());
    if (room == 0) co_return http::error::buffer_overflow;
    auto [read_ec, n] = co_await socket.async_read_some(buffer.prepare(room), use_tuple);
    // The peer ended the stream before the body did (Beast's put_eof says the same).
    if (read_ec == asio::error::eof) co_return http::error::partial_message;
    if (read_ec) co_return read_ec;
    if (n < room) note_drained(socket);
    buffer.commit(n);
  }
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

/// Whether nothing the peer sent waits unread in the socket (FIONREAD is 0). A stream without
/// a descriptor (a test's): unknown, so false.
template <class Stream>
bool nothing_unread(Stream& socket) {
  if constexpr (requires { socket.native_handle(); }) {
    int pending = 0;
    return ::ioctl(socket.native_handle(), FIONREAD, &pending) == 0 && pending == 0;
  } else {
    return false;
  }
}

// A request takes three steps: wait for it (1), read it (2), answer it (3). Each has a fast
// path that finishes without suspending the connection's coroutine when the bytes are already
// there (the usual case: a whole request in one read, a response that fits the send buffer),
// and a coroutine for the rest. Calling a coroutine for every step would allocate and resume a
// frame each time: a fifth more instructions per request.

/// Step 1: whether the connection must wait for bytes of its next request. A keep-alive
/// connection is idle then, and shutdown may close it without loss (a client must expect that
/// between requests). A connection that has not sent its first request is not idle: its client
/// connected in order to send one, which may be on its way (connect() returns before the
/// request is written), so it is waited for even while draining, under the header timeout and
/// the shutdown deadline; closing it instead would fail that request, as systemd's restarts
/// showed.
inline bool must_wait(const beast::flat_buffer& buffer, const ConnectionRegistry& registry,
                      bool first) {
  return buffer.size() == 0 && (first || !registry.draining());
}

/// Step 1, shutting down with nothing buffered: takes what has arrived without waiting. A
/// request already sent is still answered (with "Connection: close"); false when there is none,
/// and the connection should close the graceful way, so that a request crossing our FIN meets
/// an orderly end of stream, never a reset.
template <class Stream>
bool take_arrived(Stream& socket, beast::flat_buffer& buffer) {
  beast::error_code ec;
  const std::size_t n = socket.read_some(buffer.prepare(1024), ec);  // the socket is non-blocking
  if (ec) return false;
  buffer.commit(n);
  return true;
}

/// Step 1: RFC 9112 §2.2: a server SHOULD ignore empty lines received before a request line
/// (some clients send a CRLF after a POST body).
inline void skip_blank_lines(beast::flat_buffer& buffer) {
  for (int i = 0; i < 4 && buffer.size() >= 2; ++i) {
    const auto* p = static_cast<const char*>(buffer.cdata().data());
    if (p[0] != '\r' || p[1] != '\n') break;
    buffer.consume(2);
  }
}

/// What reading one request gave.
struct Incoming {
  /// How the request is answered: 0 when routed; an error status (400, 413, 431, 417, ...)
  /// when it could not be parsed or was refused before its body was read; or, with `abandoned`,
  /// not at all.
  unsigned error_status = 0;
  /// The peer went away, the deadline or shutdown closed the socket: nothing to answer.
  bool abandoned = false;
  /// The HTTP version of the error response: the request's own when it was refused after its
  /// head was read, 1.1 when it could not be parsed.
  unsigned version = 11;
};

/// The verdict on a request whose reading ended with `ec` (none: a whole request).
inline Incoming verdict(const beast::error_code& ec, const RequestParser& parser) {
  if (!ec) return Incoming{};
  const unsigned status = status_for_read_error(ec, parser.get());
  return Incoming{status, status == 0, 11};
}

/// Step 2, the fast path: parses the request from what is buffered, in place. Returns the
/// verdict when that settles it (a bodiless request whose head is all there, or a head that
/// cannot be parsed); std::nullopt when more must be read (read_request).
inline std::optional<Incoming> parse_buffered(beast::flat_buffer& buffer, RequestParser& parser) {
  beast::error_code ec;
  buffer.consume(parser.put_head(buffered(buffer), ec));
  if (ec == http::error::need_more || (!ec && !parser.is_done())) return std::nullopt;
  return verdict(ec, parser);
}

/// Step 2, the rest: reads the rest of the head, then the body. A request whose framing cannot
/// be trusted is refused before its body is read, and a client that asked for 100-continue gets
/// it before sending the body.
template <class Stream>
Task<Incoming> read_request(Stream& socket, beast::flat_buffer& buffer, RequestParser& parser) {
  beast::error_code ec;
  if (!parser.is_header_done()) ec = co_await read_head(socket, buffer, parser);
  if (!ec && !parser.is_done()) {
    // A body follows: its framing is checked before it is read (the router checks every
    // request again; for the usual bodiless ones that is the only check).
    const auto& request_head = parser.get();
    if (const auto refused = check_request(request_head)) {
      co_return Incoming{static_cast<unsigned>(*refused), false, request_head.version()};
    }
    if (request_head.version() >= 11 &&
        beast::iequals(request_head[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      std::tie(ec, std::ignore) =
          co_await asio::async_write(socket, asio::buffer(kContinue), use_tuple);
      if (ec) co_return Incoming{0, true, 11};
    }
    ec = co_await read_body(socket, buffer, parser);
  }
  co_return verdict(ec, parser);
}

/// How far sending a response got.
struct Sent {
  beast::error_code ec;
  std::size_t written = 0;
};

/// The head rendered in `head` and the in-memory body of `res`: what send_now writes at once.
inline std::array<asio::const_buffer, 2> head_and_body(const Response& res,
                                                       const std::string& head) {
  return {asio::buffer(head), res.body_in_memory()};
}

/// Step 3, the fast path: renders the head of `res` into `head` and writes it with an in-memory
/// body now, as far as the socket's send buffer takes it (the socket is non-blocking): a
/// response almost always fits. True when that finished the job (all written, or the write
/// failed); false when the rest, or a file's body, must be waited for (send_rest).
template <class Stream>
bool send_now(Stream& socket, Response& res, std::string_view date,
              std::string_view connection_lines, std::string& head, Sent& sent) {
  res.render_head(date, connection_lines, head);
  const auto buffers = head_and_body(res, head);
  sent.written = socket.write_some(buffers, sent.ec);
  if (sent.ec == asio::error::would_block) sent.ec = {};
  return sent.ec || (sent.written == asio::buffer_size(buffers) && res.file() == nullptr);
}

/// Step 3, the rest: what did not fit, then a file's body, read from its descriptor a chunk at
/// a time (the file is open for this response only).
template <class Stream>
Task<Sent> send_rest(Stream& socket, Response& res, const std::string& head, Sent sent) {
  beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(head_and_body(res, head));
  rest.consume(sent.written);
  auto [ec, more] = co_await asio::async_write(socket, rest, use_tuple);
  sent.written += more;
  FileResponse* file = res.file();
  if (ec || file == nullptr) co_return Sent{ec, sent.written};
  std::uint64_t left = file->body().size();
  std::array<char, 16384> chunk;
  while (left > 0) {
    const std::size_t n =
        file->body().file().read(chunk.data(), std::min<std::uint64_t>(left, chunk.size()), ec);
    if (ec || n == 0) break;  // the file shrank or failed: the client sees a short body
    std::tie(ec, more) =
        co_await asio::async_write(socket, asio::buffer(chunk.data(), n), use_tuple);
    sent.written += more;
    if (ec) break;
    left -= n;
  }
  if (!ec && left > 0) ec = asio::error::eof;  // framing broken: the connection must close
  co_return Sent{ec, sent.written};
}

/// The bookkeeping of one request, from its first byte: when it goes out of scope, however the
/// request ended, it is counted in the metrics and written to the access log. A request that got
/// no answer (the client went away) still leaves the in-flight gauge, and is logged with
/// status 499 once its head had arrived (nginx's "client closed request").
class RequestRecord {
 public:
  using Clock = std::chrono::steady_clock;

  /// `proxied`, when not null, is the client the connection's PROXY header named (empty: none).
  RequestRecord(SessionContext& ctx, const Peer& peer, const RequestParser& parser,
                const InlineText<46>* proxied = nullptr)
      : metrics_(ctx.metrics),
        access_log_(ctx.access_log ? &*ctx.access_log : nullptr),
        peer_(peer),
        parser_(parser),
        proxied_(proxied),
        // The exact clock is read only when someone records the duration.
        started_(metrics_ || access_log_ ? Clock::now() : Clock::time_point()) {
    if (metrics_) metrics_->request_started();
  }
  RequestRecord(const RequestRecord&) = delete;
  RequestRecord& operator=(const RequestRecord&) = delete;

  /// Learns what the request says about itself, once it has been read (its head may be
  /// missing: then only an ID is made up). The client is the one the connection's PROXY header
  /// named, if it had one; otherwise it is taken from the client header only when the peer is
  /// one `site` trusts; from anyone else the header is ignored and counted.
  void identify(const Site& site, Random& rng) {
    if (proxied_ != nullptr) client_ = *proxied_;
    if (parser_.is_header_done() && parser_.has_identity_fields()) {
      const auto& req = parser_.get();
      const Forwarding& forwarding = site.forwarding;
      const IdentityFields fields = scan_identity_fields(req, forwarding.header);
      if (valid_request_id(fields.request_id)) request_id_.take(fields.request_id);
      if (!fields.traceparent.empty()) trace_id_.assign(trace_id_of(fields.traceparent));
      // Security: a PROXY header came from the connection's own peer, checked by the kernel's
      // credentials; a header in the request is the proxy's client's to write, and loses.
      if (fields.client_header && proxied_ == nullptr) {
        if (!forwarding.trusted.empty() && trusts(forwarding.trusted, peer_)) {
          forwarded_client(req, forwarding.header, client_);
        } else if (metrics_) {
          metrics_->forwarded_ignored.add();
        }
      }
    }
    if (request_id_.empty()) request_id_.generate(rng);
  }

  /// The header line of the ID the response echoes and the log records.
  std::string_view request_id_line() const { return request_id_.line(); }

  /// The request was answered with `response` (fully or not: `written` bytes reached the socket).
  void answered(const Response& response, std::size_t written) {
    answered_ = true;
    route_ = response.route;
    status_ = response.status();
    written_ = written;
  }

  ~RequestRecord() {
    if (!metrics_ && !access_log_) return;
    const auto took = Clock::now() - started_;
    const bool have_head = parser_.is_header_done();
    const auto& req = parser_.get();
    if (metrics_) {
      if (answered_) {
        metrics_->request_finished(route_, have_head ? req.method() : http::verb::unknown, status_,
                                   written_, took);
      } else {
        metrics_->finished.add();  // abandoned: no longer in flight
      }
    }
    if (access_log_ && (answered_ || have_head)) {
      // The client, ID and trace ID are validated (addresses, [A-Za-z0-9._-], hex): they are
      // written as they are; the method, target and the fields below are escaped.
      AccessRecord record{peer_.description,
                          client_.view(),
                          request_id_.id(),
                          trace_id_.view(),
                          have_head ? std::string_view(req.method_string()) : std::string_view("-"),
                          have_head ? std::string_view(req.target()) : std::string_view("-"),
                          have_head ? req.version() : 11u,
                          answered_ ? status_ : 499u,
                          written_,
                          took,
                          {},
                          {},
                          {}};
      // Only for the formats that show them (the default text line pays nothing): one pass
      // over the few fields kept (request_parser.hpp), comparing enums, instead of a lookup by
      // name for each; the first of a repeated field, as operator[] gives.
      if (have_head && access_log_->style().wants_fields()) {
        for (const auto& field : req) {
          std::string_view* to = field.name() == http::field::host         ? &record.host
                                 : field.name() == http::field::user_agent ? &record.user_agent
                                 : field.name() == http::field::referer    ? &record.referer
                                                                           : nullptr;
          if (to != nullptr && to->empty()) *to = field.value();
        }
      }
      access_log_->record(record);
    }
  }

 private:
  WorkerMetrics* metrics_;
  AccessLog* access_log_;
  const Peer& peer_;
  const RequestParser& parser_;
  const InlineText<46>* proxied_;
  RequestIdLine request_id_;
  InlineText<46> client_;
  InlineText<32> trace_id_;
  Clock::time_point started_;
  bool answered_ = false;
  Route route_ = Route::bad_request;
  unsigned status_ = 0;
  std::size_t written_ = 0;
};

/// What the first bytes of a --proxy-protocol peer's connection were.
struct ProxyRead {
  ProxyParse result = ProxyParse::missing;  ///< done, or why the connection is refused
  InlineText<46> client;                    ///< when done: the client it named (empty: none)
};

/// Reads the PROXY header that must begin the connection, within --header-timeout and
/// kMaxProxyHeader: what follows it (the first request, often in the same segment) stays in
/// `buffer`. Cut short (the peer closed, the deadline passed) is "need more" for ever:
/// returned as ProxyParse::need_more, counted as truncated.
template <class Stream>
Task<ProxyRead> read_proxy_header(Stream& socket, beast::flat_buffer& buffer,
                                  ConnectionRegistry::Entry& entry, Duration timeout) {
  entry.expires_after(timeout);
  ProxyRead read;
  for (;;) {
    const auto data = buffer.cdata();
    ProxyHeader header;
    read.result = parse_proxy_header(
        std::string_view(static_cast<const char*>(data.data()), data.size()), header);
    if (read.result == ProxyParse::done) {
      buffer.consume(header.length);
      read.client = header.client;
      co_return read;
    }
    if (read.result != ProxyParse::need_more) co_return read;
    const std::size_t room = std::min<std::size_t>(1024, buffer.max_size() - buffer.size());
    if (room == 0) {
      read.result = ProxyParse::oversized;  // a header longer than a request head may be
      co_return read;
    }
    auto [ec, n] = co_await socket.async_read_some(buffer.prepare(room), use_tuple);
    if (ec || n == 0) co_return read;
    buffer.commit(n);
  }
}

inline Refusal proxy_refusal(ProxyParse result) {
  switch (result) {
    case ProxyParse::missing:
      return Refusal::proxy_missing;
    case ProxyParse::malformed:
      return Refusal::proxy_malformed;
    case ProxyParse::oversized:
      return Refusal::proxy_oversized;
    case ProxyParse::done:
    case ProxyParse::need_more:
      break;
  }
  return Refusal::proxy_truncated;
}

}  // namespace session

/// Serves one accepted connection, accepted on listener number `listener` (a metrics-only one
/// when `metrics_listener`) and holding `slot` of the connection limit until it ends, with the
/// worker's current Site for each request, until the peer closes, a deadline passes, a response
/// says "Connection: close", or shutdown closes it. Never throws for anything the peer sends. Each
/// request takes the three steps above.
template <class Stream>
Task<> run_session(Stream socket, Peer peer, [[maybe_unused]] ConnectionBudget::Slot slot,
                   SessionContext& ctx, bool metrics_listener, std::size_t listener) {
  using namespace session;
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
  // For the fast paths of steps 1 and 3; the epoll loop's accept made it so already.
  if (!socket.non_blocking()) socket.non_blocking(true, nb_ec);
  // Everything a connection reads goes through this buffer, and its maximum is the bound on
  // what a client can make the server hold for it, whatever it sends and however slowly: a head
  // may fill it up to the header limit, and the body is parsed out of it and dropped
  // (DiscardedBody). A chunk-size line, chunk extension or trailer section that does not fit
  // ends the request with 400 (Beast sets no limit of its own on them).
  beast::flat_buffer buffer(opts.max_header_size + kReadChunk);
  std::string head;  // the response head, rendered here; reused by every response

  // Security: a --proxy-protocol peer (decided by the kernel's credentials or the TCP address,
  // never by what it sends) must begin with a PROXY header, which then names the client. From
  // it, no header or a bad one closes the connection unanswered: serving would log the proxy
  // as the client, and a proxy that should send one and does not is misconfigured. From anyone
  // else a PROXY header is not looked for: it fails as a malformed request line (400).
  std::optional<InlineText<46>> proxied;
  if (const auto& senders = ctx.site->forwarding.proxy_senders;
      !senders.empty() && trusts(senders, peer)) {
    const ProxyRead got = co_await read_proxy_header(socket, buffer, entry, opts.header_timeout);
    if (got.result != ProxyParse::done) {
      const Refusal why = proxy_refusal(got.result);
      ctx.proxy_refused.warn("closed a connection of {}: its PROXY protocol header is {}",
                             peer.description, kRefusalLabels[static_cast<std::size_t>(why)]);
      if (ctx.metrics) ctx.metrics->refuse(listener, why);
      co_return;  // closed unanswered (what it sent was not read: the close may reset it)
    }
    proxied = got.client;
  }

  for (bool first = true;; first = false) {
    // Whether the request came whole from one read that took less than it asked for: then
    // nothing more was waiting in the socket (a short read on a stream socket drains it,
    // epoll(7)), and closing needs no FIONREAD to know that nothing is unread.
    bool short_read = false;
    // Step 1: wait for the next request, or learn that the connection is done.
    if (must_wait(buffer, ctx.registry, first)) {
      entry.idle = !first;
      entry.expires_after(first ? opts.header_timeout : opts.idle_timeout);
      auto [ec, n] = co_await socket.async_read_some(buffer.prepare(1024), use_tuple);
      entry.idle = false;
      if (!ec) {
        // Less than asked: nothing more is queued, so the next read waits for epoll rather
        // than trying recv() first (connections/reactor_hints.hpp).
        short_read = n < 1024;
        if (short_read) note_drained(socket);
        buffer.commit(n);
      } else if (ec != asio::error::operation_aborted || !ctx.registry.draining()) {
        break;  // the peer closed, the idle deadline passed, the socket failed
      }
    }
    if (buffer.size() == 0 && !take_arrived(socket, buffer)) {
      co_await close_gracefully(socket, entry);
      co_return;
    }
    skip_blank_lines(buffer);
    if (buffer.size() == 0) continue;

    bool keep_open = false;
    bool read_whole = false;  // the request was read to its end (not refused part-way)
    {
      // The request's fields, and its response's, live in an arena that gives its memory back
      // to the worker's pool when this block ends: no malloc per request, nothing held while
      // idle. The record is written when the block ends too, before any lingering close.
      Arena arena(ctx.blocks);
      RequestParser parser(arena);
      parser.header_limit(static_cast<std::uint32_t>(opts.max_header_size));
      parser.body_limit(opts.max_body_size);
      if (ctx.access_log && ctx.access_log->style().wants_fields()) parser.keep_log_fields(true);
      RequestRecord record(ctx, peer, parser, proxied ? &*proxied : nullptr);
      // The response may point into the site's content: it must outlive the write even if a
      // reload replaces the worker's site meanwhile.
      const std::shared_ptr<const Site> site = ctx.site;
      entry.expires_after(opts.header_timeout);

      // Step 2: read it.
      std::optional<Incoming> parsed = parse_buffered(buffer, parser);
      if (!parsed) short_read = false;  // more reads follow: what they left is not known
      const Incoming incoming = parsed ? *parsed : co_await read_request(socket, buffer, parser);
      record.identify(*site, ctx.rng);
      if (incoming.abandoned) break;
      // Built in place (no move-assignment of the message variant on every request).
      Response res =
          incoming.error_status != 0
              ? Router::error(static_cast<http::status>(incoming.error_status), incoming.version)
              : site->router(metrics_listener).route(parser.get(), ctx.rng);
      if (ctx.registry.draining()) res.keep_alive(false);

      // Step 3: answer it.
      entry.expires_after(opts.send_timeout);
      const std::string_view date = ctx.date.now();
      Sent sent;
      if (!send_now(socket, res, date, record.request_id_line(), head, sent))
        sent = co_await send_rest(socket, res, head, sent);
      record.answered(res, sent.written);
      if (sent.ec) break;
      keep_open = res.keep_alive();
      read_whole = incoming.error_status == 0;
    }
    if (!keep_open) {
      // The lingering close guards a response against the reset that closing with unread
      // input sends. A request read to its end, with nothing after it buffered or waiting,
      // leaves nothing for it to guard: close at once (nginx lingers only when the client may
      // still be sending), saving its shutdown, reads and wait. A refused request may be
      // followed by the rest of its body, still on its way: that one lingers. "Nothing
      // waiting" is the short read's word when there was one (as nginx's read->ready is),
      // else FIONREAD's.
      if (read_whole && buffer.size() == 0 && (short_read || nothing_unread(socket))) break;
      co_await close_gracefully(socket, entry);
      co_return;
    }
  }
  beast::error_code ignored;
  socket.close(ignored);
}

}  // namespace printerfacts
