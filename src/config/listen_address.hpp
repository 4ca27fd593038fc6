// Where a listener listens: "unix:/path/to/socket" or "tcp:HOST:PORT".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace printerfacts {

/// The longest Unix socket path, in bytes: sun_path holds 108 bytes including the NUL.
inline constexpr std::size_t kMaxUnixPathLength = 107;

/// A parsed --listen value.
struct ListenAddress {
  enum class Kind { unix_socket, tcp };

  Kind kind = Kind::tcp;
  std::string path;  ///< unix_socket: the socket file, as given (relative paths allowed)
  std::string host;  ///< tcp: an IP literal without brackets, or a host name; "::" for all
  std::uint16_t port = 0;

  /// The canonical text form, e.g. "unix:/run/printerfacts/http.sock" or "tcp:[::]:3000".
  std::string to_string() const;

  friend bool operator==(const ListenAddress&, const ListenAddress&) = default;
};

/// Parses "unix:PATH", "tcp:HOST:PORT", "tcp:[V6]:PORT", "tcp::PORT" or "tcp:PORT" (all
/// addresses), or a bare absolute path (a Unix socket). Throws StartupError naming `text` when
/// malformed: an empty path, a path with NUL or over kMaxUnixPathLength bytes, an abstract
/// socket ("unix:@name", which has no file permissions to guard it), a bad port.
ListenAddress parse_listen_address(std::string_view text);

}  // namespace printerfacts
