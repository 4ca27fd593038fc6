// The PROXY protocol (HAProxy's specification, versions 1 and 2): the header a proxy in front
// of us (HAProxy `send-proxy-v2`, nginx `proxy_protocol on`, sslh, Envoy) sends before the first
// byte of the connection's own data, naming the client it accepted. Only peers named by
// --proxy-protocol must send it, and only theirs is believed (connections/session.hpp).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "connections/request_identity.hpp"

namespace printerfacts {

/// The most a header may take: a v1 line is at most 107 bytes; a v2 header is 16 bytes and what
/// its length field says, addresses and TLVs (HAProxy's unique ID, ALPN, authority, TLS details),
/// which 4 KiB holds with room to spare. Anything longer is refused, not buffered.
inline constexpr std::size_t kMaxProxyHeader = 4096;

/// What a complete header says.
struct ProxyHeader {
  std::size_t length = 0;  ///< bytes the header took, to be consumed before the HTTP data
  /// The client's address (inet_ntop's form; IPv4 as a.b.c.d), empty when the header names none:
  /// v2 LOCAL (the proxy's own health check), v1 UNKNOWN, an unspecified or Unix-socket source.
  InlineText<46> client;
};

/// The outcome of looking at the first bytes of a connection.
enum class ProxyParse : std::uint8_t {
  done,       ///< a whole, valid header: `out` holds it
  need_more,  ///< a valid beginning; read more (up to kMaxProxyHeader)
  missing,    ///< not a PROXY header at all (no signature): plain data
  malformed,  ///< the signature, then something the specification does not allow
  oversized,  ///< longer than kMaxProxyHeader
};

/// Parses the PROXY header at the start of `data` (everything received so far). Pure, no
/// allocation; strict: a single space between v1 fields, addresses of the family named, ports
/// 0-65535 without leading zeros, v2's version 2 with command LOCAL or PROXY.
ProxyParse parse_proxy_header(std::string_view data, ProxyHeader& out);

}  // namespace printerfacts
