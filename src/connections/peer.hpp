// Who is on the other end of an accepted connection, as the kernel says: for the access log,
// the allow-lists and the trust given to a proxy's forwarded headers.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <string>

#include "config/trusted_proxies.hpp"

namespace printerfacts {

/// Learned once per connection, from the kernel only: nothing the peer sends changes it.
struct Peer {
  /// "unix:pid=P,uid=U,gid=G" (SO_PEERCRED: the credentials of the process that connected, as
  /// the kernel recorded them at connect(), which the peer cannot forge), "tcp:ADDRESS:PORT"
  /// (IPv4-mapped IPv6 shown as plain IPv4), or "-" when unknown.
  std::string description = "-";
  enum class Kind : std::uint8_t { unknown, unix_socket, tcp } kind = Kind::unknown;
  uid_t uid = static_cast<uid_t>(-1);      ///< unix_socket
  gid_t gid = static_cast<gid_t>(-1);      ///< unix_socket: the primary group
  std::array<std::uint8_t, 16> address{};  ///< tcp: IPv6, or IPv4 as IPv4-mapped IPv6
};

/// What a connected socket is, when the caller knows (its listener's kind); `unknown` asks the
/// kernel (getpeername).
enum class Transport { unknown, unix_socket, tcp };

/// The peer of the connected socket `fd`.
Peer identify_peer(int fd, Transport transport = Transport::unknown);

/// Whether `peer` is one of `trusted`: a Unix-socket peer by uid or primary gid, a TCP peer by
/// address.
bool trusts(const TrustedProxies& trusted, const Peer& peer);

}  // namespace printerfacts
