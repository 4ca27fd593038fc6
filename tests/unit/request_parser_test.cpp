#include "connections/request_parser.hpp"

#include <string>

#include <boost/asio/buffer.hpp>
#include <gtest/gtest.h>

namespace printerfacts {
namespace {

struct Parsed {
  boost::beast::error_code ec;
  bool done = false;
};

Parsed parse(RequestParser& parser, const std::string& raw) {
  Parsed p;
  parser.header_limit(64 * 1024);
  parser.put(boost::asio::buffer(raw), p.ec);
  p.done = parser.is_done();
  return p;
}

TEST(RequestParserTest, KeepsTheFieldsRoutingReadsAndDropsTheRest) {
  BlockPool pool;
  Arena arena(pool);
  RequestParser parser(arena);
  const auto p = parse(parser,
                       "GET /static/style.css HTTP/1.1\r\nHost: example.org\r\n"
                       "User-Agent: curl/7.88\r\nAccept: */*\r\nIf-None-Match: \"abc\"\r\n"
                       "Connection: close\r\nX-Forwarded-For: 192.0.2.1\r\n\r\n");
  ASSERT_FALSE(p.ec) << p.ec.message();
  ASSERT_TRUE(p.done);
  const auto& req = parser.get();
  EXPECT_EQ(req[http::field::host], "example.org");
  EXPECT_EQ(req[http::field::if_none_match], "\"abc\"");
  EXPECT_FALSE(req.keep_alive());
  EXPECT_EQ(req.count(http::field::user_agent), 0u);
  EXPECT_EQ(req.count("X-Forwarded-For"), 0u);
  EXPECT_EQ(std::distance(req.begin(), req.end()), 3);
  EXPECT_EQ(req.get_allocator().arena(), &arena);
}

TEST(RequestParserTest, DuplicateFramingFieldsStayVisibleToTheChecks) {
  BlockPool pool;
  Arena arena(pool);
  RequestParser parser(arena);
  // Two Hosts: each one is kept, so check_request can refuse the request.
  const auto p = parse(parser, "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\nHost: b\r\n\r\n");
  ASSERT_FALSE(p.ec) << p.ec.message();
  EXPECT_EQ(parser.get().count(http::field::host), 2u);
  EXPECT_EQ(check_request(parser.get()), http::status::bad_request);
}

std::string with_fields(int n) {
  std::string raw = "GET /fact HTTP/1.1\r\nHost: x\r\n";
  for (int i = 1; i < n; ++i) raw += "X-F" + std::to_string(i) + ": v\r\n";
  return raw + "\r\n";
}

TEST(RequestParserTest, CountsDroppedFieldsAgainstTheLimit) {
  BlockPool pool;
  {
    Arena arena(pool);
    RequestParser parser(arena);
    const auto p = parse(parser, with_fields(static_cast<int>(kMaxHeaderFields)));
    EXPECT_FALSE(p.ec) << p.ec.message();
    EXPECT_TRUE(p.done);
  }
  {
    Arena arena(pool);
    RequestParser parser(arena);
    const auto p = parse(parser, with_fields(static_cast<int>(kMaxHeaderFields) + 1));
    EXPECT_EQ(p.ec, http::error::header_limit);  // answered 431 by the connection
  }
}

}  // namespace
}  // namespace printerfacts
