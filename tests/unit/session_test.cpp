#include "connections/session.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/local/connect_pair.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <fstream>
#include <sstream>

#include "temp_dir.hpp"

namespace printerfacts {
namespace {

namespace asio = boost::asio;
using unix_stream = asio::local::stream_protocol;

// One connection served by run_session in this thread: the server end of a socket pair runs on
// the test's io_context, the test drives the client end. Nothing else runs (no sweeper: no
// deadlines), so every step happens when the test runs the event loop, and nowhere else.
// A socket pair rather than Beast's test::stream: the session's write-now and drain paths are
// socket operations (non-blocking writes and reads, half-close), and these tests exercise them.
class SessionTest : public ::testing::Test {
 protected:
  SessionTest() {
    options_.threads = 1;
    ctx_.access_log.emplace(sink_, io_.get_executor(),
                            AccessLog::Style{AccessLog::Format::text, false});
    Socket<unix_stream> server(io_);
    asio::local::connect_pair(client_, server);
    Peer peer = identify_peer(server.native_handle());  // this process: our uid and gid
    asio::co_spawn(io_,
                   run_session(std::move(server), std::move(peer), budget_.take(), ctx_, false, 0),
                   [this](std::exception_ptr e) {
                     ended_ = true;
                     if (e) std::rethrow_exception(e);
                   });
  }

  void send(std::string_view bytes) { asio::write(client_, asio::buffer(bytes)); }

  // Runs the server until `done(received)` holds or the connection is closed (then also returns
  // what arrived); fails after 10 s.
  template <class Done>
  std::string receive(Done done) {
    client_.non_blocking(true);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done(received_) && std::chrono::steady_clock::now() < deadline) {
      io_.run_one_for(std::chrono::milliseconds(5));
      char chunk[65536];
      boost::system::error_code ec;
      const std::size_t n = client_.read_some(asio::buffer(chunk), ec);
      if (!ec) {
        received_.append(chunk, n);
      } else if (ec != asio::error::would_block) {
        closed_ = ec == asio::error::eof ? "eof" : ec.message();
        break;
      }
    }
    return received_;
  }
  // The first response to a chunked POST of /fact whose body is `body`.
  std::string chunked_post(std::string_view body) {
    send("POST /fact HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
         std::string(body));
    return receive_responses(1);
  }
  std::string receive_responses(std::size_t n) {
    return receive([n](const std::string& r) { return count(r, "\r\n\r\n") >= n; });
  }
  // Runs the server until the client sees the connection end; returns how ("eof" when orderly).
  std::string receive_until_closed() {
    receive([](const std::string&) { return false; });
    return closed_;
  }
  void run_until_session_ends() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!ended_ && std::chrono::steady_clock::now() < deadline)
      io_.run_one_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(ended_);
  }
  std::string access_log() {
    ctx_.access_log->flush();
    EXPECT_TRUE(sink_.wait_written(std::chrono::steady_clock::now() + std::chrono::seconds(10)));
    std::ifstream in(log_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  static std::size_t count(std::string_view haystack, std::string_view needle) {
    std::size_t n = 0;
    for (auto at = haystack.find(needle); at != std::string_view::npos;
         at = haystack.find(needle, at + 1))
      ++n;
    return n;
  }

  testing::TempDir dir_;
  std::string log_path_ = dir_ / "access.log";
  int log_fd_ = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  LogStream sink_{log_fd_, "access", nullptr, false};
  ConnectionBudget budget_{16};
  Options options_;
  WorkerMetrics metrics_{1};
  Health health_;
  SessionContext ctx_{.options = options_,
                      .site = std::make_shared<const Site>(
                          Content{Facts::parse("The fact.\n", "test"), StaticFiles::embedded()},
                          PeerAllowList{}, nullptr, false, &health_),
                      .rng = Random(1),
                      .access_log = std::nullopt,
                      .registry = {},
                      .date = {},
                      .metrics = &metrics_,
                      .blocks = {},
                      .proxy_refused = {}};
  // After ctx_: destroyed first, with any coroutine frame still in it, while ctx_ is alive.
  asio::io_context io_;
  unix_stream::socket client_{io_};
  std::string received_;
  std::string closed_;
  bool ended_ = false;

  ~SessionTest() override {
    client_.close();
    io_.run_for(std::chrono::milliseconds(50));
    ::close(log_fd_);
  }
};

TEST_F(SessionTest, PipelinedRequestsAreAnsweredInOrderOnOneConnection) {
  send(
      "GET /fact HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /fact "
      "HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string r = receive_responses(3);
  ASSERT_EQ(count(r, "HTTP/1.1 200 OK\r\n"), 3u) << r;
  const auto fact = r.find("The fact.\n"), ok = r.find("ok\n");
  ASSERT_NE(fact, std::string::npos);
  ASSERT_NE(ok, std::string::npos);
  EXPECT_LT(fact, ok) << "answered in the order asked";
  EXPECT_EQ(count(r, "The fact.\n"), 1u) << "HEAD sends no body";
  EXPECT_EQ(metrics_.started.get(), 3u);
  EXPECT_EQ(metrics_.finished.get(), 3u);
}

TEST_F(SessionTest, ExpectContinueGets100BeforeTheBodyIsSent) {
  send("POST /fact HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  std::string r =
      receive([](const std::string& s) { return s.find("\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(r, "HTTP/1.1 100 Continue\r\n\r\n") << "nothing but the interim answer yet";
  send("hello");
  r = receive_responses(2);
  EXPECT_NE(r.find("HTTP/1.1 405 Method Not Allowed\r\n"), std::string::npos) << r;
}

TEST_F(SessionTest, AClientGoneBefore100ContinueLeavesNothingInFlight) {
  // The 100 Continue write fails (the client has closed): the request is abandoned, and must
  // still leave the in-flight gauge (started - finished) and the access log.
  send("POST /fact HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  client_.close();
  run_until_session_ends();
  EXPECT_EQ(metrics_.started.get(), 1u);
  EXPECT_EQ(metrics_.finished.get(), 1u);
  EXPECT_NE(access_log().find("\"POST /fact HTTP/1.1\" 499 0"), std::string::npos) << access_log();
}

TEST_F(SessionTest, ABodyOverTheLimitIs413AndCloses) {
  send("POST /fact HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
  const std::string r = receive_responses(1);
  EXPECT_EQ(r.rfind("HTTP/1.1 413 ", 0), 0u) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(receive_until_closed(), "eof");
}

TEST_F(SessionTest, EmptyTransferCodingElementsAreSkippedAndTheBodyFramedAsChunked) {
  // RFC 9110 §5.6.1: ",chunked" is the list (chunked). The body is read as chunked (405 for the
  // POST), and the request after it is a request of its own: the framing agrees with Beast's.
  for (const std::string_view coding : {",chunked", "chunked,", " , chunked"}) {
    received_.clear();
    send("POST /fact HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: " + std::string(coding) +
         "\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    const std::string r = receive_responses(2);
    EXPECT_EQ(r.rfind("HTTP/1.1 405 ", 0), 0u) << coding << ": " << r;
    EXPECT_NE(r.find("HTTP/1.1 200 OK\r\n"), std::string::npos) << coding << ": " << r;
  }
}

TEST_F(SessionTest, AQuotedChunkExtensionThatRunsPastItsLineIs400AtOnce) {
  // llhttp: "Invalid character in chunk extensions quoted value". A quoted-string has no CR or
  // LF (RFC 9112 §7.1.1). Nothing more is sent: the answer must not wait for the buffer to
  // fill or for the client to go away.
  EXPECT_EQ(chunked_post("5;a=\"abc\r\nhello\r\n0\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u)
      << received_;
  EXPECT_EQ(receive_until_closed(), "eof");
}

TEST_F(SessionTest, AQuotedChunkExtensionThatRunsPastALaterChunksLineIs400AtOnce) {
  EXPECT_EQ(chunked_post("5\r\nhello\r\n0;a=\"abc\\\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u)
      << received_;
}

TEST_F(SessionTest, ABareLineFeedInAQuotedChunkExtensionIs400) {
  EXPECT_EQ(chunked_post("5;a=\"ab\ncd\"\r\nhello\r\n0\r\n\r\n").rfind("HTTP/1.1 400 ", 0), 0u)
      << received_;
}

TEST_F(SessionTest, AQuotedChunkExtensionWithAnEscapedQuoteIsFine) {
  EXPECT_EQ(chunked_post("5;a=\"a\\\"b\";c=d\r\nhello\r\n0\r\n\r\n").rfind("HTTP/1.1 405 ", 0), 0u)
      << received_;
}

TEST_F(SessionTest, ATooLongRequestLineIs414) {
  send("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(receive_responses(1).rfind("HTTP/1.1 414 ", 0), 0u) << received_;
}

TEST_F(SessionTest, TooManyHeaderBytesAre431) {
  std::string req = "GET /fact HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 200; ++i)
    req += "X-Filler-" + std::to_string(i) + ": " + std::string(40, 'v') + "\r\n";
  send(req + "\r\n");
  EXPECT_EQ(receive_responses(1).rfind("HTTP/1.1 431 ", 0), 0u) << received_;
  EXPECT_EQ(access_log().find(" 431 ") != std::string::npos, true) << access_log();
}

TEST_F(SessionTest, ARequestLineOfAnotherVersionIs400BeforeRouting) {
  // Beast's parser takes HTTP/1.0 and 1.1 only; the router never sees another version.
  send("GET /fact HTTP/2.0\r\nHost: x\r\n\r\n");
  EXPECT_EQ(receive_responses(1).rfind("HTTP/1.1 400 ", 0), 0u) << received_;
  EXPECT_EQ(receive_until_closed(), "eof");
}

TEST_F(SessionTest, MoreThanAHundredFieldsAre431EvenWhenSmall) {
  std::string req = "GET /fact HTTP/1.1\r\nHost: x\r\n";
  for (std::size_t i = 0; i < kMaxHeaderFields; ++i) req += "a: b\r\n";  // 101 with Host
  send(req + "\r\n");
  EXPECT_EQ(receive_responses(1).rfind("HTTP/1.1 431 ", 0), 0u) << received_;
}

TEST_F(SessionTest, DrainingClosesAnIdleKeepAliveConnection) {
  send("GET /fact HTTP/1.1\r\nHost: x\r\n\r\n");
  receive_responses(1);
  ctx_.registry.drain();
  EXPECT_EQ(receive_until_closed(), "eof") << "closed in order, not reset";
}

TEST_F(SessionTest, DrainingAnswersARequestInFlightWithConnectionClose) {
  send("GET /fact HTTP/1.1\r\nHost: x\r\n");  // half a request
  receive([](const std::string&) { return true; });
  for (int i = 0; i < 20; ++i) io_.run_one_for(std::chrono::milliseconds(1));
  ctx_.registry.drain();
  send("\r\n");
  const std::string r = receive_responses(1);
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Connection: close\r\n"), std::string::npos) << r;
  EXPECT_EQ(receive_until_closed(), "eof");
}

TEST_F(SessionTest, ANewConnectionWhoseRequestArrivesAfterTheDrainIsStillAnswered) {
  ctx_.registry.drain();  // before the first byte: the client connected to send a request
  for (int i = 0; i < 20; ++i) io_.run_one_for(std::chrono::milliseconds(1));
  send("GET /fact HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string r = receive_responses(1);
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_EQ(receive_until_closed(), "eof");
}

TEST_F(SessionTest, ConnectionCloseLingersSoUnreadInputCausesNoReset) {
  // Bytes the server never reads (a pipelined request after "Connection: close"): closing with
  // them unread would reset the connection and could destroy the response before it is read.
  send(
      "GET /fact HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /fact HTTP/1.1\r\nHost: "
      "x\r\n\r\n");
  EXPECT_EQ(receive_until_closed(), "eof");
  EXPECT_EQ(count(received_, "HTTP/1.1 200 OK\r\n"), 1u) << received_;
  EXPECT_NE(received_.find("The fact.\n"), std::string::npos);
}

TEST_F(SessionTest, EveryResponseCarriesTheRequestIdTheLogRecords) {
  send(
      "GET /fact HTTP/1.1\r\nHost: x\r\nX-Request-Id: from-nginx.1\r\n\r\n"
      "GET /fact HTTP/1.1\r\nHost: x\r\nX-Request-Id: bad id\r\n\r\n"
      "GET /nope HTTP/1.1\r\n\r\n");  // no Host: 400, still with an ID
  const std::string r = receive_responses(3);
  EXPECT_NE(r.find("X-Request-Id: from-nginx.1\r\n"), std::string::npos) << r;
  EXPECT_EQ(r.find("bad id"), std::string::npos) << "an invalid ID is replaced, never echoed";
  EXPECT_EQ(count(r, "X-Request-Id: "), 3u) << r;
  const std::string log = access_log();
  EXPECT_NE(log.find(" rid=from-nginx.1\n"), std::string::npos) << log;
  // The generated IDs of the other two, as the responses said them, are in the log too.
  for (auto at = r.find("X-Request-Id: "); at != std::string::npos;
       at = r.find("X-Request-Id: ", at + 1)) {
    const std::string id = r.substr(at + 14, r.find("\r\n", at) - at - 14);
    EXPECT_NE(log.find(" rid=" + id + "\n"), std::string::npos) << id << " in\n" << log;
  }
}

TEST_F(SessionTest, TheClientIsTakenOnlyFromATrustedPeer) {
  const auto with_trust = [this](TrustedProxies trusted) {
    ctx_.site = std::make_shared<const Site>(
        Content{Facts::parse("The fact.\n", "test"), StaticFiles::embedded()}, PeerAllowList{},
        nullptr, false, &health_,
        Forwarding{std::move(trusted), ClientHeader::x_forwarded_for, {}});
  };
  with_trust(TrustedProxies{.uids = {::getuid() + 1}, .gids = {}, .networks = {}});
  send("GET /fact HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 192.0.2.7\r\n\r\n");
  receive_responses(1);
  EXPECT_EQ(access_log().find("client="), std::string::npos) << access_log();
  EXPECT_EQ(metrics_.forwarded_ignored.get(), 1u) << "an untrusted peer's header is counted";

  with_trust(TrustedProxies{.uids = {::getuid()}, .gids = {}, .networks = {}});
  send("GET /fact HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 6.6.6.6, 192.0.2.7\r\n\r\n");
  receive_responses(2);
  EXPECT_NE(access_log().find(" client=192.0.2.7 \"GET /fact HTTP/1.1\""), std::string::npos)
      << access_log();
  EXPECT_EQ(access_log().find("6.6.6.6"), std::string::npos) << "the client's own claim";
  EXPECT_EQ(metrics_.forwarded_ignored.get(), 1u);
}

TEST_F(SessionTest, AFileLargerThanTheSendBufferArrivesWholeAndTheConnectionGoesOn) {
  // A 2 MiB file from --static-dir: more than the socket buffer holds, so the write-now path
  // sends part of it and the rest streams from the descriptor while the client reads.
  std::string content(2 << 20, '\0');
  for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i % 26);
  std::ofstream(dir_ / "big.txt") << content;
  ctx_.site = std::make_shared<const Site>(
      Content{Facts::parse("The fact.\n", "test"), StaticFiles::directory(dir_.path())},
      PeerAllowList{}, nullptr, false, &health_);
  send(
      "HEAD /static/big.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /static/big.txt HTTP/1.1\r\nHost: "
      "x\r\n\r\nGET /fact HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string r =
      receive([](const std::string& got) { return got.find("The fact.\n") != std::string::npos; });
  const std::string length = "Content-Length: " + std::to_string(content.size()) + "\r\n";
  ASSERT_EQ(count(r, length), 2u) << r.substr(0, 400);
  const auto head_end = r.find("\r\n\r\n", r.find("\r\n\r\n") + 4) + 4;  // the GET's head
  ASSERT_GE(r.size(), head_end + content.size());
  EXPECT_TRUE(r.compare(head_end, content.size(), content) == 0) << "the file's bytes, in order";
  EXPECT_EQ(r.compare(head_end + content.size(), 17, "HTTP/1.1 200 OK\r\n"), 0)
      << "the next response follows the body at once";
  EXPECT_EQ(metrics_.finished.get(), 3u);
}

}  // namespace
}  // namespace printerfacts
