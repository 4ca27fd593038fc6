#include "routing/router.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "temp_dir.hpp"
#include "wire.hpp"

namespace printerfacts {
namespace {

class RouterTest : public ::testing::Test {
 protected:
  Response get(std::string_view target, http::verb method = http::verb::get,
               unsigned version = 11) {
    Request req{method, target, version};
    if (version >= 11) req.set(http::field::host, "example");
    for (const auto& [name, value] : extra_) req.set(name, value);
    return router_.route(req, rng_);
  }
  static std::string body(const Response& r) { return testing::on_the_wire(r).message.body(); }
  static std::string header(const Response& r, http::field f) {
    return std::string(testing::on_the_wire(r).message[f]);
  }
  static std::string header(const Response& r, std::string_view name) {
    return std::string(testing::on_the_wire(r).message[name]);
  }
  static std::size_t content_length(const Response& r) {
    return std::stoul(header(r, http::field::content_length));
  }
  /// The response to a request with Host: x and one field line of `field` per entry of `lines`.
  Response with_lines(http::field field, std::initializer_list<std::string_view> lines,
                      http::verb method = http::verb::post, unsigned version = 11) {
    Request req{method, "/fact", version};
    req.set(http::field::host, "x");
    for (const auto line : lines) req.insert(field, line);
    return router_.route(req, rng_);
  }

  Content content_{Facts::parse("Fact one.\nFact <two> & more.\n", "test"),
                   StaticFiles::embedded()};
  Router router_{content_};
  Random rng_{7};
  std::vector<std::pair<http::field, std::string>> extra_;
};

TEST_F(RouterTest, FactIsOneLineOfPlainText) {
  const Response r = get("/fact");
  EXPECT_EQ(r.status(), 200u);
  EXPECT_EQ(header(r, http::field::content_type), "text/plain; charset=utf-8");
  const std::string b = body(r);
  EXPECT_TRUE(b == "Fact one.\n" || b == "Fact <two> & more.\n") << b;
  EXPECT_EQ(content_length(r), b.size());
  EXPECT_EQ(r.route, Route::fact);
  EXPECT_FALSE(r.head_only);
}

TEST_F(RouterTest, HeadSendsHeadersWithTheRealLength) {
  const Response r = get("/fact", http::verb::head);
  EXPECT_EQ(r.status(), 200u);
  EXPECT_TRUE(r.head_only);
  EXPECT_GT(content_length(r), 0u);
  EXPECT_EQ(testing::on_the_wire(r).message.body(), "") << "no body after the head";
}

TEST_F(RouterTest, IndexIsHtmlWithAnEscapedFact) {
  bool saw_escaped = false;
  for (int i = 0; i < 20; ++i) {
    const Response r = get("/");
    EXPECT_EQ(r.status(), 200u);
    EXPECT_EQ(header(r, http::field::content_type), "text/html; charset=utf-8");
    const std::string b = body(r);
    EXPECT_NE(b.find("<title>Printer Facts</title>"), std::string::npos);
    EXPECT_EQ(b.find("<two>"), std::string::npos);
    saw_escaped |=
        b.find("<blockquote>Fact &lt;two&gt; &amp; more.</blockquote>") != std::string::npos;
  }
  EXPECT_TRUE(saw_escaped);
}

TEST_F(RouterTest, TheFactHeadIsExactlyWhatTheKindDeclares) {
  const Response r = get("/fact");
  std::string head;
  r.render_head(testing::kTestDate, "", head);
  const auto body_size = testing::on_the_wire(r).message.body().size();
  const std::string expected_prefix =
      "HTTP/1.1 200 OK\r\n"
      "Server: printerfacts\r\n"
      "X-Content-Type-Options: nosniff\r\n"
      "Content-Type: text/plain; charset=utf-8\r\n"
      "Cache-Control: no-store\r\n"
      "Date: Tue, 01 Dec 2026 00:00:00 GMT\r\n"
      "Content-Length: ";
  EXPECT_EQ(head.substr(0, expected_prefix.size()), expected_prefix);
  EXPECT_EQ(head, expected_prefix + std::to_string(body_size) + "\r\n\r\n");
}

TEST_F(RouterTest, EveryKindOfResponseSaysServerAndNosniffOnce) {
  extra_ = {};
  std::vector<Response> responses;
  for (const char* target : {"/", "/fact", "/healthz", "/static/style.css", "/nope"})
    responses.push_back(get(target));
  responses.push_back(get("/fact", http::verb::post));  // 405
  responses.push_back(get("*", http::verb::options));
  responses.push_back(Router::error(http::status::request_header_fields_too_large, 11));
  for (const Response& r : responses) {
    const auto wire = testing::on_the_wire(r);
    EXPECT_EQ(wire.message.count(http::field::server), 1u) << wire.bytes;
    EXPECT_EQ(wire.message[http::field::server], "printerfacts");
    EXPECT_EQ(wire.message.count("X-Content-Type-Options"), 1u) << wire.bytes;
    EXPECT_EQ(wire.message.count(http::field::date), 1u) << wire.bytes;
  }
}

TEST_F(RouterTest, ARefusedHeadRequestGetsNoBodyAndCloses) {
  Request req{http::verb::head, "/fact", 11};  // no Host
  const Response r = router_.route(req, rng_);
  EXPECT_EQ(r.status(), 400u);
  EXPECT_FALSE(r.keep_alive());
  const auto wire = testing::on_the_wire(r);
  EXPECT_EQ(wire.message.body(), "");
  EXPECT_GT(std::stoul(std::string(wire.message[http::field::content_length])), 0u);
  EXPECT_EQ(wire.message[http::field::connection], "close");
}

TEST_F(RouterTest, OptionsAsteriskAllowsGetAndHeadWithNoContent) {
  const auto wire = testing::on_the_wire(get("*", http::verb::options));
  EXPECT_EQ(wire.message.result_int(), 200u);
  EXPECT_EQ(wire.message[http::field::allow], "GET, HEAD");
  EXPECT_EQ(wire.message[http::field::content_length], "0");
  EXPECT_EQ(wire.message.count(http::field::content_type), 0u);
}

TEST_F(RouterTest, PercentEncodedPathsMatchTheirRoute) {
  EXPECT_EQ(get("/%66act").route, Route::fact);
  EXPECT_EQ(get("/fact?x=1").route, Route::fact);
  EXPECT_EQ(get("http://example/fact").route, Route::fact) << "absolute-form";
}

TEST_F(RouterTest, HealthzSaysOk) {
  const Response r = get("/healthz");
  EXPECT_EQ(r.status(), 200u);
  EXPECT_EQ(body(r), "ok\n");
}

TEST(RouterHealth, HealthzAnswers503OnceTheProcessIsLeavingAndTheAppStillServes) {
  const Content content{Facts::parse("f\n", "t"), StaticFiles::embedded()};
  Health health;
  const Router router(content, nullptr, true, &health);
  Random rng(1);
  const auto get = [&](const char* target) {
    Request req{http::verb::get, target, 11};
    req.set(http::field::host, "x");
    return router.route(req, rng);
  };
  EXPECT_EQ(get("/healthz").status(), 200u);
  health.leave();
  const Response r = get("/healthz");
  EXPECT_EQ(r.status(), 503u);
  EXPECT_EQ(r.route, Route::healthz);
  EXPECT_EQ(testing::on_the_wire(r).message.body(), "shutting down\n");
  EXPECT_EQ(get("/fact").status(), 200u) << "a lame duck still serves requests";
}

TEST_F(RouterTest, StaticAssetHasTypeEtagAndCaching) {
  const Response r = get("/static/style.css");
  EXPECT_EQ(r.status(), 200u);
  EXPECT_EQ(header(r, http::field::content_type), "text/css; charset=utf-8");
  EXPECT_EQ(header(r, http::field::cache_control), "public, max-age=3600");
  EXPECT_FALSE(header(r, http::field::etag).empty());
}

TEST_F(RouterTest, MatchingIfNoneMatchGives304WithoutBody) {
  const std::string etag = header(get("/static/style.css"), http::field::etag);
  extra_ = {{http::field::if_none_match, "\"nope\", W/" + etag}};
  const Response r = get("/static/style.css");
  EXPECT_EQ(r.status(), 304u);
  const auto wire = testing::on_the_wire(r);
  EXPECT_EQ(wire.message.body(), "");
  EXPECT_EQ(wire.message.count(http::field::content_length), 0u) << "RFC 9110 §8.6: no content";
  EXPECT_EQ(wire.message[http::field::cache_control], "public, max-age=3600");
  EXPECT_EQ(header(r, http::field::etag), etag);
  extra_ = {{http::field::if_none_match, "\"other\""}};
  EXPECT_EQ(get("/static/style.css").status(), 200u);
}

TEST_F(RouterTest, TraversalAttemptsAreNotFound) {
  for (const char* target :
       {"/static/../CMakeLists.txt", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/.%2e/x",
        "/static/%2E%2E%2Fetc%2Fpasswd", "/static/..%5c..%5cetc%5cpasswd",
        "/static/style.css%00.txt", "/static/%252e%252e/etc/passwd", "/static/", "/static",
        "/static//style.css", "/static/./style.css"}) {
    const Response r = get(target);
    EXPECT_EQ(r.status(), 404u) << target;
    EXPECT_EQ(r.route, Route::not_found) << target;
  }
}

TEST_F(RouterTest, NotFoundNamesThePathEscaped) {
  const Response r = get("/no%3Cscript%3Ealert(1)%3C/script%3E");
  EXPECT_EQ(r.status(), 404u);
  const std::string b = body(r);
  EXPECT_NE(b.find("/no&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(b.find("<script>"), std::string::npos);
  EXPECT_EQ(header(r, http::field::content_type), "text/html; charset=utf-8");
  EXPECT_NE(header(r, "Content-Security-Policy").find("default-src 'none'"), std::string::npos);
  EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
}

TEST_F(RouterTest, OtherMethodsOnKnownPathsAre405WithAllow) {
  for (const char* target : {"/", "/fact", "/healthz", "/static/style.css"}) {
    const Response r = get(target, http::verb::post);
    EXPECT_EQ(r.status(), 405u) << target;
    EXPECT_EQ(header(r, http::field::allow), "GET, HEAD");
  }
  EXPECT_EQ(get("/unknown", http::verb::delete_).status(), 404u);
}

TEST_F(RouterTest, Http11WithoutHostIsRefused) {
  Request req{http::verb::get, "/fact", 11};
  const Response r = router_.route(req, rng_);
  EXPECT_EQ(r.status(), 400u);
  EXPECT_FALSE(r.keep_alive());
}

TEST_F(RouterTest, Http10WithoutHostIsFine) {
  const Response r = get("/fact", http::verb::get, 10);
  EXPECT_EQ(r.status(), 200u);
  EXPECT_FALSE(r.keep_alive()) << "HTTP/1.0 closes unless asked to keep alive";
}

TEST_F(RouterTest, KeepAliveFollowsTheRequest) {
  EXPECT_TRUE(get("/fact").keep_alive());
  extra_ = {{http::field::connection, "close"}};
  EXPECT_FALSE(get("/fact").keep_alive());
}

TEST_F(RouterTest, ConnectionOptionsSpanFieldLines) {
  const auto keeps_open = [this](unsigned version, std::initializer_list<std::string_view> lines) {
    return with_lines(http::field::connection, lines, http::verb::get, version).keep_alive();
  };
  EXPECT_FALSE(keeps_open(11, {"keep-alive", "Close"}));
  EXPECT_FALSE(keeps_open(11, {"x, close"}));
  EXPECT_TRUE(keeps_open(11, {"keep-alive", "upgrade"}));
  EXPECT_TRUE(keeps_open(10, {"x", "Keep-Alive"}));
  EXPECT_FALSE(keeps_open(10, {"keep-alive", "close"}));
  EXPECT_FALSE(keeps_open(10, {}));
}

TEST_F(RouterTest, ConnectIsNotImplementedAndCloses) {
  // RFC 9110 §9.3.6 and §15.6.2: a server that opens no tunnels answers 501, not 400.
  const Response r = get("x:443", http::verb::connect);
  EXPECT_EQ(r.status(), 501u);
  EXPECT_FALSE(r.keep_alive());
  EXPECT_EQ(get("x:443", http::verb::connect, 10).status(), 501u);
}

TEST_F(RouterTest, AuthorityFormWithOtherMethodsIsABadRequest) {
  EXPECT_EQ(get("x:443").status(), 400u);
}

TEST_F(RouterTest, HostValuesFollowTheUriHostGrammar) {
  const auto status_with_host = [this](std::string_view host) {
    Request req{http::verb::get, "/healthz", 11};
    req.set(http::field::host, host);
    return router_.route(req, rng_).status();
  };
  // reg-names, including ones Boost.URL 1.81's authority parser refuses because they begin
  // like an IPv4 address (RFC 3986 §3.2.2: the first-match rule makes them reg-names).
  for (const std::string_view ok :
       {"x", "example.com:8080", "0.0.0.0=5000", "1.2.3.4.5", "a_b~c", "a%41b", "127.0.0.1",
        "[::1]", "[::1]:80", "[v1.x]", "x:", "", "!$&'()*+,;="}) {
    EXPECT_EQ(status_with_host(ok), 200u) << ok;
  }
  for (const std::string_view bad : {"u@x", "a b", "x:8o", "x:1:2", "[::1", "[::1]x", "[zz]", "a%4",
                                     "a%zz", "a/b", "a?b", "a#b", "\"x\"", "<x>"}) {
    EXPECT_EQ(status_with_host(bad), 400u) << bad;
  }
}

TEST_F(RouterTest, TransferCodingListSpansFieldLines) {
  // RFC 9110 §5.3: two Transfer-Encoding lines are one list; the final coding is the last
  // element of the last line.
  const auto status_with_codings = [this](std::initializer_list<std::string_view> lines) {
    return with_lines(http::field::transfer_encoding, lines).status();
  };
  EXPECT_EQ(status_with_codings({"deflate", "chunked"}), 405u);
  EXPECT_EQ(status_with_codings({"deflate, chunked"}), 405u);
  EXPECT_EQ(status_with_codings({"chunked", "deflate"}), 400u);
  EXPECT_EQ(status_with_codings({"gzip"}), 400u);
  // RFC 9110 §5.6.1: a recipient MUST accept and ignore empty list elements, so the final
  // coding of these is chunked (as Beast, which frames the body, reads them too).
  EXPECT_EQ(status_with_codings({",chunked"}), 405u);
  EXPECT_EQ(status_with_codings({"chunked,"}), 405u);
  EXPECT_EQ(status_with_codings({" , chunked"}), 405u);
  EXPECT_EQ(status_with_codings({"gzip, , chunked"}), 405u);
  EXPECT_EQ(status_with_codings({"", "chunked"}), 405u);
  // An empty line adds no element either (on the wire, Beast refuses a second line after
  // chunked: 400 before routing).
  EXPECT_EQ(status_with_codings({"chunked", ""}), 405u);
  EXPECT_EQ(status_with_codings({""}), 400u);
  EXPECT_EQ(status_with_codings({" , "}), 400u);
  // Read strictly otherwise: names that are not tokens, chunked twice or with parameters.
  EXPECT_EQ(status_with_codings({"\"chunked\""}), 400u);
  EXPECT_EQ(status_with_codings({"chunked, chunked"}), 400u);
  EXPECT_EQ(status_with_codings({"chunked;q=1"}), 400u);
  EXPECT_EQ(status_with_codings({"gzip;level=1 , Chunked"}), 405u);
}

TEST_F(RouterTest, OneContentLengthOfDigitsOnly) {
  const auto status_with_lengths = [this](std::initializer_list<std::string_view> lines) {
    return with_lines(http::field::content_length, lines).status();
  };
  EXPECT_EQ(status_with_lengths({"5"}), 405u);
  EXPECT_EQ(status_with_lengths({"5", "5"}), 400u);
  EXPECT_EQ(status_with_lengths({"5, 5"}), 400u);
  EXPECT_EQ(status_with_lengths({"+5"}), 400u);
}

TEST_F(RouterTest, UnparsableTargetsAreBadRequests) {
  EXPECT_EQ(get("*").status(), 400u);
  EXPECT_EQ(get("/a b").status(), 400u);
  EXPECT_EQ(get("/%zz").status(), 400u);
}

TEST(RouterFiles, AFileFromTheStaticDirGoesOutWhole) {
  testing::TempDir dir;
  const std::string content(100000, 'x');
  { std::ofstream(dir / "big.txt") << content; }
  const Content files{Facts::parse("f\n", "t"), StaticFiles::directory(dir.path())};
  const Router router(files);
  Random rng(1);
  Request req{http::verb::get, "/static/big.txt", 11};
  req.set(http::field::host, "x");
  const Response r = router.route(req, rng);
  ASSERT_TRUE(std::holds_alternative<FileResponse>(r.message));
  const auto wire = testing::on_the_wire(r);
  EXPECT_EQ(wire.message.body(), content);
  EXPECT_EQ(wire.message[http::field::content_type], "text/plain; charset=utf-8");
  EXPECT_EQ(wire.message[http::field::cache_control], "public, max-age=3600");
  EXPECT_FALSE(wire.message[http::field::etag].empty());
}

TEST(EtagMatches, WeakComparisonAndLists) {
  EXPECT_TRUE(etag_matches("\"a\"", "\"a\""));
  EXPECT_TRUE(etag_matches("W/\"a\"", "\"a\""));
  EXPECT_TRUE(etag_matches(" \"x\" ,\t\"a\"", "\"a\""));
  EXPECT_TRUE(etag_matches("*", "\"a\""));
  EXPECT_FALSE(etag_matches("\"b\"", "\"a\""));
  EXPECT_FALSE(etag_matches("", "\"a\""));
  EXPECT_FALSE(etag_matches("a", "\"a\""));
}

}  // namespace
}  // namespace printerfacts

namespace printerfacts {
namespace {

class FixedMetrics : public MetricsSource {
 public:
  std::string render() const override { return "# TYPE x counter\nx 1\n"; }
};

TEST(RouterMetrics, MetricsOnlyWhenGivenASource) {
  const Content content{Facts::parse("f\n", "t"), StaticFiles::embedded()};
  Random rng(1);
  Request req{http::verb::get, "/metrics", 11};
  req.set(http::field::host, "x");
  EXPECT_EQ(Router(content).route(req, rng).status(), 404u) << "off by default";
  const FixedMetrics metrics;
  const Response r = Router(content, &metrics).route(req, rng);
  EXPECT_EQ(r.status(), 200u);
  EXPECT_EQ(r.route, Route::metrics);
  const auto wire = testing::on_the_wire(r);
  EXPECT_EQ(wire.message.body(), "# TYPE x counter\nx 1\n");
  EXPECT_EQ(wire.message[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(wire.message[http::field::cache_control], "no-store");
  EXPECT_EQ(wire.message.count("Content-Security-Policy"), 0u) << "not a page";
}

TEST(RouterMetrics, AMetricsOnlyRouterServesNoApp) {
  const Content content{Facts::parse("f\n", "t"), StaticFiles::embedded()};
  const FixedMetrics metrics;
  const Router router(content, &metrics, false);
  Random rng(1);
  for (const auto& [target, status] :
       std::vector<std::pair<const char*, unsigned>>{{"/metrics", 200},
                                                     {"/healthz", 200},
                                                     {"/fact", 404},
                                                     {"/", 404},
                                                     {"/static/style.css", 404}}) {
    Request req{http::verb::get, target, 11};
    req.set(http::field::host, "x");
    EXPECT_EQ(router.route(req, rng).status(), status) << target;
  }
}

}  // namespace
}  // namespace printerfacts
