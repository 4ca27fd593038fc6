// Raw bytes in, through Beast's parser, our request checks and router, to a rendered response:
// the whole path one request takes inside a connection, minus the socket.
#include <boost/asio/buffer.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "connections/request_identity.hpp"
#include "connections/request_parser.hpp"
#include "routing/router.hpp"

namespace {

using namespace printerfacts;

const Content& content() {
  static const Content c{Facts::parse("Fact one.\nFact <two> & \"three\".\n", "fuzz"),
                         StaticFiles::embedded()};
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Router router(content());
  static Random rng(1);
  // Each request's fields in an arena over a pool, as in a connection (util/arena.hpp).
  static BlockPool pool;
  std::optional<Arena> arena;  // declared first: outlives the parser whose fields it holds
  std::optional<RequestParser> parser;
  const auto fresh = [&parser, &arena] {
    parser.reset();
    arena.emplace(pool);
    parser.emplace(*arena);
    parser->header_limit(8192);
    parser->body_limit(65536);
    parser->eager(true);
  };
  fresh();
  boost::beast::error_code ec;
  std::size_t offset = 0;
  // Feed the bytes as a connection would: possibly several requests back to back.
  while (offset < size) {
    const std::size_t used = parser->put(boost::asio::buffer(data + offset, size - offset), ec);
    offset += used;
    // What a connection would check before reading more of a chunked body (session.hpp,
    // read_body): the unparsed rest begins at a chunk-size line.
    if (parser->is_header_done() && parser->chunked() && !parser->is_done()) {
      (void)chunk_line_ends_in_quotes(
          std::string_view(reinterpret_cast<const char*>(data + offset), size - offset));
    }
    if (ec == http::error::need_more) return 0;
    if (ec) return 0;
    if (!parser->is_done()) {
      if (used == 0) return 0;
      continue;
    }
    // What the connection learns of a request: whatever the fields hold, a client address
    // comes out as an address or not at all, an ID as [A-Za-z0-9._-] or not at all.
    for (const auto header :
         {ClientHeader::x_forwarded_for, ClientHeader::x_real_ip, ClientHeader::forwarded}) {
      InlineText<46> client;
      if (forwarded_client(parser->get(), header, client) &&
          client.view().find_first_not_of("0123456789abcdef.:") != std::string_view::npos) {
        __builtin_trap();
      }
    }
    if (const auto it = parser->get().find("traceparent"); it != parser->get().end()) {
      if (trace_id_of(it->value()).find_first_not_of("0123456789abcdef") != std::string_view::npos)
        __builtin_trap();
    }
    Response res = router.route(parser->get(), rng);
    std::string head;
    res.render_head("Sat, 28 Nov 2026 00:00:00 GMT",
                    "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n", head);
    // Whatever was asked, the head is well formed: one status line, CRLF-terminated fields.
    if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 4 ||
        head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
      __builtin_trap();
    }
    fresh();
  }
  return 0;
}
