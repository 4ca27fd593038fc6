#include "config/listen_address.hpp"

#include <gtest/gtest.h>

#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

using Kind = ListenAddress::Kind;

TEST(ParseListenAddress, UnixSocketPaths) {
  const auto a = parse_listen_address("unix:/run/printerfacts/http.sock");
  EXPECT_EQ(a.kind, Kind::unix_socket);
  EXPECT_EQ(a.path, "/run/printerfacts/http.sock");
  EXPECT_EQ(a.to_string(), "unix:/run/printerfacts/http.sock");
  EXPECT_EQ(parse_listen_address("unix:./printerfacts.sock").path, "./printerfacts.sock");
  EXPECT_EQ(parse_listen_address("/tmp/x.sock").kind, Kind::unix_socket);
}

TEST(ParseListenAddress, TcpForms) {
  auto a = parse_listen_address("tcp:127.0.0.1:3000");
  EXPECT_EQ(a.kind, Kind::tcp);
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 3000);
  a = parse_listen_address("tcp:[::1]:8080");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 8080);
  EXPECT_EQ(a.to_string(), "tcp:[::1]:8080");
  a = parse_listen_address("tcp::9000");
  EXPECT_EQ(a.host, "::");
  EXPECT_EQ(a.port, 9000);
  a = parse_listen_address("tcp:0");
  EXPECT_EQ(a.host, "::");
  EXPECT_EQ(a.port, 0);
  EXPECT_EQ(parse_listen_address("tcp:[::]:3000").to_string(), "tcp:[::]:3000");
  EXPECT_EQ(parse_listen_address("tcp:localhost:80").host, "localhost");
}

void expect_error(std::string_view text, std::string_view fragment) {
  try {
    parse_listen_address(text);
    ADD_FAILURE() << "accepted " << text;
  } catch (const StartupError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ParseListenAddress, RejectsWithAReason) {
  expect_error("unix:", "empty");
  expect_error("unix:@abstract", "abstract");
  expect_error("tcp:127.0.0.1:65536", "port");
  expect_error("tcp:127.0.0.1:", "port");
  expect_error("tcp:127.0.0.1:80x", "port");
  expect_error("tcp:::1:80", "brackets");
  expect_error("tcp:[::1:80", "]");
  expect_error("http://localhost", "expected unix:PATH");
  expect_error(std::string_view("unix:/a\0b", 9), "NUL");
}

TEST(ParseListenAddress, PathLengthLimitIsSunPath) {
  const std::string ok(kMaxUnixPathLength, 'a');
  EXPECT_EQ(parse_listen_address("unix:" + ok).path, ok);
  const std::string too_long = "/" + std::string(kMaxUnixPathLength, 'a');
  expect_error("unix:" + too_long, "at most 107 bytes");
}

}  // namespace
}  // namespace printerfacts
