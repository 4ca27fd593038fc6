#include "config/listen_address.hpp"

#include <fmt/format.h>

#include <charconv>

#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

[[noreturn]] void fail(std::string_view text, std::string_view why) {
  std::string shown;  // control bytes (a NUL would cut the message short) shown as \xHH
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x20) {
      shown += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    } else {
      shown.push_back(c);
    }
  }
  throw StartupError("invalid listen address \"" + shown + "\": " + std::string(why));
}

std::uint16_t parse_port(std::string_view all, std::string_view port) {
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    fail(all, "the port must be a number from 0 to 65535");
  }
  return static_cast<std::uint16_t>(value);
}

ListenAddress parse_unix(std::string_view all, std::string_view path) {
  if (path.empty()) fail(all, "the socket path is empty");
  // Abstract sockets (a leading NUL, conventionally written '@') live outside the file system:
  // any process in the network namespace can connect, and no mode or group can stop it.
  if (path.front() == '@')
    fail(all, "abstract sockets have no file permissions and are not supported");
  if (path.find('\0') != std::string_view::npos) fail(all, "the socket path contains a NUL byte");
  if (path.size() > kMaxUnixPathLength) {
    fail(all, "the socket path is " + std::to_string(path.size()) +
                  " bytes; a Unix socket path may be at most " +
                  std::to_string(kMaxUnixPathLength) + " bytes (sun_path is 108 bytes)");
  }
  ListenAddress a;
  a.kind = ListenAddress::Kind::unix_socket;
  a.path = std::string(path);
  return a;
}

ListenAddress parse_tcp(std::string_view all, std::string_view rest) {
  ListenAddress a;
  a.kind = ListenAddress::Kind::tcp;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) fail(all, "missing ']' after the IPv6 address");
    a.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (rest.empty() || rest.front() != ':') fail(all, "expected ':PORT' after the IPv6 address");
    a.port = parse_port(all, rest.substr(1));
  } else if (const auto colon = rest.rfind(':'); colon == std::string_view::npos) {
    a.host = "::";
    a.port = parse_port(all, rest);
  } else {
    a.host = std::string(rest.substr(0, colon));
    if (a.host.find(':') != std::string::npos)
      fail(all, "write IPv6 addresses in brackets: tcp:[::1]:3000");
    a.port = parse_port(all, rest.substr(colon + 1));
  }
  if (a.host.empty()) a.host = "::";
  return a;
}

}  // namespace

std::string ListenAddress::to_string() const {
  if (kind == Kind::unix_socket) return "unix:" + path;
  if (host.find(':') != std::string::npos) return "tcp:[" + host + "]:" + std::to_string(port);
  return "tcp:" + host + ":" + std::to_string(port);
}

ListenAddress parse_listen_address(std::string_view text) {
  if (text.starts_with("unix:")) return parse_unix(text, text.substr(5));
  if (text.starts_with("tcp:")) return parse_tcp(text, text.substr(4));
  if (text.starts_with("/")) return parse_unix(text, text);
  fail(text, "expected unix:PATH or tcp:HOST:PORT");
}

}  // namespace printerfacts
