#include "log/access_log.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>

namespace printerfacts {
namespace {

using namespace std::chrono_literals;

// The lines `records` make in `style` (without timestamps, so they can be compared whole),
// read back from the pipe the log's stream writes to.
template <class... Records>
std::string lines_of(AccessLog::Style style, const Records&... records) {
  int fds[2];
  EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  {
    LogStream stream(
        fds[1], "access", [](const std::string&) {}, true);
    boost::asio::io_context io;
    {
      AccessLog log(stream, io.get_executor(), style);
      (log.record(records), ...);
    }  // flushed when it ends
    EXPECT_TRUE(stream.drain(std::chrono::steady_clock::now() + 5s));
  }
  ::close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    out.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  return out;
}

AccessRecord fact() {
  AccessRecord r;
  r.peer = "unix:pid=42,uid=33,gid=33";
  r.method = "GET";
  r.target = "/fact";
  r.version = 11;
  r.status = 200;
  r.bytes = 85;
  r.duration = 42us;
  r.request_id = "5f0c";
  return r;
}

TEST(AccessLogText, OneLineOfNamedFields) {
  EXPECT_EQ(lines_of({.format = AccessLog::Format::text, .timestamps = false}, fact()),
            "unix:pid=42,uid=33,gid=33 \"GET /fact HTTP/1.1\" 200 85 0.042ms rid=5f0c\n");
  AccessRecord forwarded = fact();
  forwarded.client = "192.0.2.7";
  forwarded.version = 10;
  forwarded.request_id = "";
  EXPECT_EQ(lines_of({.format = AccessLog::Format::text, .timestamps = false}, forwarded),
            "unix:pid=42,uid=33,gid=33 client=192.0.2.7 \"GET /fact HTTP/1.0\" 200 85 0.042ms\n");
}

TEST(AccessLogText, EscapesWhatTheClientSent) {
  AccessRecord r = fact();
  r.target = "/a\"b\nc\x01";
  const std::string line = lines_of({.format = AccessLog::Format::text, .timestamps = false}, r);
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line whatever the target holds: " << line;
  EXPECT_EQ(line.find('\x01'), std::string::npos) << line;
}

TEST(AccessLogJson, OneObjectPerLineWithOptionalFieldsOnlyWhenKnown) {
  EXPECT_EQ(lines_of({.format = AccessLog::Format::json, .timestamps = false}, fact()),
            "{\"peer\":\"unix:pid=42,uid=33,gid=33\",\"request_id\":\"5f0c\","
            "\"http.request.method\":\"GET\",\"url.path\":\"/fact\","
            "\"network.protocol.version\":\"1.1\",\"http.response.status_code\":200,"
            "\"http.response.size\":85,\"duration_ms\":0.042}\n");
  AccessRecord r = fact();
  r.client = "192.0.2.7";
  r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  r.target = "/\"\\\n\xff?q=\"1\"";
  EXPECT_EQ(lines_of({.format = AccessLog::Format::json, .timestamps = false}, r),
            "{\"peer\":\"unix:pid=42,uid=33,gid=33\",\"client.address\":\"192.0.2.7\","
            "\"request_id\":\"5f0c\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\","
            "\"http.request.method\":\"GET\",\"url.path\":\"/\\\"\\\\\\u000a\\u00ff\","
            "\"url.query\":\"q=\\\"1\\\"\",\"network.protocol.version\":\"1.1\","
            "\"http.response.status_code\":200,\"http.response.size\":85,\"duration_ms\":0.042}\n");
}

TEST(AccessLogJson, TheRequestsHostUserAgentAndRefererUnderTheirOpenTelemetryNames) {
  AccessRecord r = fact();
  r.peer = "tcp:[2001:db8::1]:4242";  // no trusted client: the TCP peer is the client
  r.host = "printerfacts.example:8080";
  r.user_agent = "curl/8.0 \"x\"";
  r.referer = "https://example.org/a?b";
  EXPECT_EQ(lines_of({.format = AccessLog::Format::json, .timestamps = false}, r),
            "{\"peer\":\"tcp:[2001:db8::1]:4242\",\"client.address\":\"2001:db8::1\","
            "\"request_id\":\"5f0c\",\"http.request.method\":\"GET\",\"url.path\":\"/fact\","
            "\"network.protocol.version\":\"1.1\",\"http.response.status_code\":200,"
            "\"http.response.size\":85,\"duration_ms\":0.042,"
            "\"server.address\":\"printerfacts.example\",\"server.port\":8080,"
            "\"user_agent.original\":\"curl/8.0 \\\"x\\\"\","
            "\"http.request.header.referer\":[\"https://example.org/a?b\"]}\n");
  // A bracketed IPv6 Host with and without a port; a port that is not a number is not one.
  for (const auto& [host, expected] :
       {std::pair{"[2001:db8::2]:81", "\"server.address\":\"2001:db8::2\",\"server.port\":81}"},
        std::pair{"[2001:db8::2]", "\"server.address\":\"2001:db8::2\"}"},
        std::pair{"x:y", "\"server.address\":\"x\"}"}}) {
    AccessRecord h = fact();
    h.host = host;
    const std::string line = lines_of({.format = AccessLog::Format::json, .timestamps = false}, h);
    EXPECT_NE(line.find(expected), std::string::npos) << host << ": " << line;
  }
}

TEST(AccessLog, TheRequestsOwnFieldsAreCutToABoundInEveryFormat) {
  const std::string huge(100000, 'u');
  AccessRecord r = fact();
  r.host = huge;
  r.user_agent = huge;
  r.referer = huge;
  for (auto format : {AccessLog::Format::json, AccessLog::Format::combined,
                      AccessLog::Format::logfmt, AccessLog::Format::text}) {
    const std::string line = lines_of({.format = format, .timestamps = false}, r);
    EXPECT_LT(line.size(), 3 * kMaxLoggedFieldBytes + 400) << static_cast<int>(format);
    EXPECT_EQ(line.find('\n'), line.size() - 1);
  }
  const std::string combined =
      lines_of({.format = AccessLog::Format::combined, .timestamps = false}, r);
  EXPECT_NE(combined.find("\"" + std::string(kMaxLoggedFieldBytes, 'u') + "\"\n"),
            std::string::npos);
}

TEST(AccessLog, TimestampsLeadEachLineInUtc) {
  const std::string line =
      lines_of({.format = AccessLog::Format::text, .timestamps = true}, fact());
  ASSERT_GE(line.size(), 25u);
  EXPECT_EQ(line[4], '-');
  EXPECT_EQ(line[10], 'T');
  EXPECT_EQ(line.substr(23, 2), "Z ") << line;
}

TEST(AccessLogCombined, TheClfLineWithTheClientAsHostAndEscapedFields) {
  AccessRecord r = fact();
  r.client = "192.0.2.7";
  r.user_agent = "curl/8.0 \"quoted\"";
  r.referer = "https://example.org/";
  const std::string line =
      lines_of({.format = AccessLog::Format::combined, .timestamps = false}, r);
  // The date is the only part that changes: checked by shape, the rest whole.
  const auto open = line.find('['), close = line.find(']');
  ASSERT_NE(open, std::string::npos);
  EXPECT_EQ(line.substr(0, open), "192.0.2.7 - - ");
  EXPECT_EQ(close - open + 1, std::string("[28/Nov/2026:04:15:17 +0000]").size());
  EXPECT_EQ(
      line.substr(close + 1),
      " \"GET /fact HTTP/1.1\" 200 85 \"https://example.org/\" \"curl/8.0 \\x22quoted\\x22\"\n");
  // No client: a TCP peer's address is the host; a Unix-socket peer has none.
  AccessRecord tcp = fact();
  tcp.peer = "tcp:[2001:db8::1]:4242";
  EXPECT_EQ(
      lines_of({.format = AccessLog::Format::combined, .timestamps = false}, tcp).substr(0, 16),
      "2001:db8::1 - - ");
  EXPECT_EQ(
      lines_of({.format = AccessLog::Format::combined, .timestamps = false}, fact()).substr(0, 6),
      "- - - ");
  EXPECT_NE(lines_of({.format = AccessLog::Format::combined, .timestamps = false}, fact())
                .find("\"-\" \"-\"\n"),
            std::string::npos)
      << "no Referer, no User-Agent: dashes";
}

TEST(AccessLogLogfmt, KeyValuePairsQuotedWhereTheyMustBe) {
  AccessRecord r = fact();
  r.host = "printerfacts.example";
  r.user_agent = "curl/8.0 (x=1)";
  EXPECT_EQ(lines_of({.format = AccessLog::Format::logfmt, .timestamps = false}, r),
            "peer=\"unix:pid=42,uid=33,gid=33\" method=GET target=/fact proto=HTTP/1.1 status=200 "
            "bytes=85 duration_ms=0.042 request_id=5f0c host=printerfacts.example "
            "user_agent=\"curl/8.0 (x=1)\"\n");
  AccessRecord odd = fact();
  odd.target = "/a b\"c\n";
  EXPECT_NE(lines_of({.format = AccessLog::Format::logfmt, .timestamps = false}, odd)
                .find("target=\"/a b\\\"c\\u000a\""),
            std::string::npos);
}

}  // namespace
}  // namespace printerfacts
