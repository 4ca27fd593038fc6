#include "connections/request_parser.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <string>

namespace printerfacts {
namespace {

struct Parsed {
  boost::beast::error_code ec;
  bool done = false;
};

Parsed parse(RequestParser& parser, const std::string& raw) {
  Parsed p;
  parser.header_limit(64 * 1024);
  // Beast's put() stops after the head: call it again for the body, as a connection does.
  std::size_t used = 0;
  do {
    used += parser.put(boost::asio::buffer(raw.data() + used, raw.size() - used), p.ec);
  } while (!p.ec && !parser.is_done() && used < raw.size());
  p.done = parser.is_done();
  return p;
}

TEST(RequestParserTest, KeepsTheFieldsRoutingAndIdentityReadAndDropsTheRest) {
  BlockPool pool;
  Arena arena(pool);
  RequestParser parser(arena);
  const auto p = parse(parser,
                       "GET /static/style.css HTTP/1.1\r\nHost: example.org\r\n"
                       "User-Agent: curl/7.88\r\nAccept: */*\r\nIf-None-Match: \"abc\"\r\n"
                       "Connection: close\r\nX-Forwarded-For: 192.0.2.1\r\nX-Request-ID: a-1\r\n"
                       "Cookie: c=1\r\nX-Forwarded-Proto: https\r\n\r\n");
  ASSERT_FALSE(p.ec) << p.ec.message();
  ASSERT_TRUE(p.done);
  const auto& req = parser.get();
  EXPECT_EQ(req[http::field::host], "example.org");
  EXPECT_EQ(req[http::field::if_none_match], "\"abc\"");
  EXPECT_FALSE(req.keep_alive());
  EXPECT_EQ(req.count(http::field::user_agent), 0u);
  EXPECT_EQ(req.count(http::field::cookie), 0u);
  EXPECT_EQ(req.count("X-Forwarded-Proto"), 0u);
  EXPECT_EQ(req["X-Forwarded-For"], "192.0.2.1") << "kept for request_identity";
  EXPECT_EQ(req["x-request-id"], "a-1");
  EXPECT_EQ(std::distance(req.begin(), req.end()), 5);
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

TEST(RequestParserTest, RefusesObsFoldInEveryField) {
  for (const std::string raw :
       {"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n abc\r\n\r\n"}) {
    BlockPool pool;
    Arena arena(pool);
    RequestParser parser(arena);
    boost::beast::error_code ec;
    parser.put_head(raw, ec);
    EXPECT_EQ(ec, http::error::bad_obs_fold) << raw;
  }
}

TEST(RequestParserTest, RefusesWhitespaceBeforeTheFirstField) {
  BlockPool pool;
  Arena arena(pool);
  RequestParser parser(arena);
  boost::beast::error_code ec;
  parser.put_head("GET / HTTP/1.1\r\n Host: x\r\n\r\n", ec);
  EXPECT_TRUE(ec);  // Beast's bad_field or our bad_obs_fold: a 400 either way
  EXPECT_NE(ec, http::error::need_more);
}

TEST(RequestParserTest, RefusesObsFoldInAHeadThatArrivesInPieces) {
  // Beast takes whole lines as they arrive: a continuation that begins the next piece, or
  // lies inside it, is seen either way.
  const std::string raw = "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nX-B: c\r\n\r\n";
  for (std::size_t split = 1; split < raw.size(); ++split) {
    BlockPool pool;
    Arena arena(pool);
    RequestParser parser(arena);
    boost::beast::error_code ec;
    std::string pending = raw.substr(0, split);
    pending.erase(0, parser.put_head(pending, ec));
    if (ec == http::error::need_more) {
      pending += raw.substr(split);
      parser.put_head(pending, ec);
    }
    EXPECT_EQ(ec, http::error::bad_obs_fold) << "split at " << split;
  }
}

TEST(RequestParserTest, PutHeadLeavesTheBodyForTheBodyRead) {
  BlockPool pool;
  Arena arena(pool);
  RequestParser parser(arena);
  const std::string raw = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  boost::beast::error_code ec;
  const std::size_t head = raw.find("\r\n\r\n") + 4;
  EXPECT_EQ(parser.put_head(raw, ec), head);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parser.is_header_done());
  EXPECT_FALSE(parser.is_done());
  // The body is counted, not kept.
  EXPECT_EQ(parser.put(boost::asio::buffer(raw.data() + head, 5), ec), 5u);
  EXPECT_TRUE(parser.is_done());
  EXPECT_EQ(parser.get().body(), 5u);
}

TEST(RequestParserTest, FramingFieldsInTrailersAreRefused) {
  // Beast applies its framing checks to trailer fields too: a second Transfer-Encoding after a
  // chunked body is an error, never a change of framing.
  BlockPool pool;
  Arena arena(pool);
  RequestParser parser(arena);
  const auto p = parse(parser,
                       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "1\r\na\r\n0\r\nTransfer-Encoding: gzip\r\n\r\n");
  EXPECT_EQ(p.ec, http::error::bad_transfer_encoding);
}

TEST(RequestParserTest, RefusesObsFoldInTrailers) {
  for (const std::string trailers :
       {"X-T: 1\r\n y\r\n", "X-T: 1\r\n\ty\r\n", "A: 1\r\nB: 2\r\n  c\r\n", " X: 1\r\n"}) {
    BlockPool pool;
    Arena arena(pool);
    RequestParser parser(arena);
    const auto p = parse(parser,
                         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "1\r\na\r\n0\r\n" +
                             trailers + "\r\n");
    EXPECT_EQ(p.ec, http::error::bad_obs_fold) << trailers;
  }
  // Unfolded trailers, and none, still parse (the scan stops at the empty line).
  for (const std::string trailers : {"", "X-T: 1\r\n", "A: 1\r\nB:  2\r\n"}) {
    BlockPool pool;
    Arena arena(pool);
    RequestParser parser(arena);
    const auto p = parse(parser,
                         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "1;e=v\r\na\r\n0;z\r\n" +
                             trailers + "\r\n GET / HTTP/1.1\r\n");
    EXPECT_FALSE(p.ec) << trailers << p.ec.message();
    EXPECT_TRUE(p.done) << trailers;
  }
}

TEST(RequestParserTest, TrailerFieldsAreNotMergedIntoTheHead) {
  BlockPool pool;
  Arena arena(pool);
  RequestParser parser(arena);
  const auto p = parse(parser,
                       "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "1\r\na\r\n0\r\nHost: y\r\nConnection: close\r\n\r\n");
  ASSERT_FALSE(p.ec) << p.ec.message();
  ASSERT_TRUE(p.done);
  EXPECT_EQ(parser.get().count(http::field::host), 1u);
  EXPECT_TRUE(parser.get().keep_alive());
  EXPECT_EQ(check_request(parser.get()), std::nullopt);
}

}  // namespace
}  // namespace printerfacts
