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
            "{\"peer\":\"unix:pid=42,uid=33,gid=33\",\"request_id\":\"5f0c\",\"method\":\"GET\","
            "\"target\":\"/fact\",\"version\":\"1.1\",\"status\":200,\"bytes\":85,"
            "\"duration_ms\":0.042}\n");
  AccessRecord r = fact();
  r.client = "192.0.2.7";
  r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  r.target = "/\"\\\n\xff";
  EXPECT_EQ(lines_of({.format = AccessLog::Format::json, .timestamps = false}, r),
            "{\"peer\":\"unix:pid=42,uid=33,gid=33\",\"client\":\"192.0.2.7\",\"request_id\":"
            "\"5f0c\",\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\",\"method\":\"GET\","
            "\"target\":\"/\\\"\\\\\\u000a\\u00ff\",\"version\":\"1.1\",\"status\":200,"
            "\"bytes\":85,\"duration_ms\":0.042}\n");
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
