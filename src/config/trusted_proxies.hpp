// Who may tell us who the client is: the proxies whose forwarded-client header is believed
// (--trust-forwarded), and which header that is (--client-header).
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace printerfacts {

/// An IPv4 or IPv6 network; IPv4 is kept as IPv4-mapped IPv6 (::ffff:a.b.c.d/96+n), the form a
/// dual-stack listener sees IPv4 peers in, so one comparison serves both.
struct Cidr {
  std::array<std::uint8_t, 16> address{};
  unsigned prefix = 128;  ///< in IPv6 bits

  /// "10.0.0.0/8", "192.0.2.1" (a /32), "2001:db8::/32", "::1"; std::nullopt when malformed
  /// (host bits set beyond the prefix are malformed too: "10.0.0.1/8" is a typo of something).
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const std::array<std::uint8_t, 16>& ipv6) const;
  friend bool operator==(const Cidr&, const Cidr&) = default;
};

/// The trusted peers, resolved: Unix-socket peers by the uid or primary gid the kernel recorded
/// (SO_PEERCRED), TCP peers by address. Empty: trust nobody.
struct TrustedProxies {
  std::vector<uid_t> uids;
  std::vector<gid_t> gids;
  std::vector<Cidr> networks;

  bool empty() const { return uids.empty() && gids.empty() && networks.empty(); }
  friend bool operator==(const TrustedProxies&, const TrustedProxies&) = default;
};

/// The values of `flag` (--trust-forwarded, --proxy-protocol: "uid:USER", "gid:GROUP",
/// "tcp:CIDR") resolved; throws StartupError naming the value that is malformed, names no user
/// or group, or names the overflow uid or gid.
TrustedProxies resolve_trusted_proxies(const std::vector<std::string>& values,
                                       std::string_view flag = "trust-forwarded");

/// The header a trusted proxy names the client in.
enum class ClientHeader : std::uint8_t {
  x_forwarded_for,  ///< the rightmost entry: the address the trusted proxy itself appended
  x_real_ip,        ///< one address
  forwarded,        ///< RFC 7239: the for= of the last element
};

/// "X-Forwarded-For", "X-Real-IP" or "Forwarded" (case-insensitive); std::nullopt otherwise.
std::optional<ClientHeader> parse_client_header(std::string_view name);

/// The header's name as sent ("X-Forwarded-For", ...).
constexpr std::string_view client_header_name(ClientHeader header) {
  switch (header) {
    case ClientHeader::x_real_ip:
      return "X-Real-IP";
    case ClientHeader::forwarded:
      return "Forwarded";
    case ClientHeader::x_forwarded_for:
      break;
  }
  return "X-Forwarded-For";
}

}  // namespace printerfacts
