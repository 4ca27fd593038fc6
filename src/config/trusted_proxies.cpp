#include "config/trusted_proxies.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <boost/beast/core/string.hpp>
#include <charconv>
#include <cstring>

#include "config/options.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const auto slash = text.find('/');
  const std::string host(text.substr(0, slash));
  Cidr c;
  unsigned max_prefix = 128;
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    c.address[10] = c.address[11] = 0xff;
    std::memcpy(&c.address[12], &v4, 4);
    max_prefix = 32;
  } else if (::inet_pton(AF_INET6, host.c_str(), c.address.data()) != 1) {
    return std::nullopt;
  }
  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
        prefix > max_prefix) {
      return std::nullopt;
    }
  }
  c.prefix = prefix + (128 - max_prefix);
  // Host bits set beyond the prefix: refused rather than silently masked.
  for (unsigned bit = c.prefix; bit < 128; ++bit) {
    if (c.address[bit / 8] & (0x80u >> (bit % 8))) return std::nullopt;
  }
  return c;
}

bool Cidr::contains(const std::array<std::uint8_t, 16>& ipv6) const {
  const unsigned whole = prefix / 8, rest = prefix % 8;
  if (std::memcmp(address.data(), ipv6.data(), whole) != 0) return false;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff00u >> rest);
  return (address[whole] & mask) == (ipv6[whole] & mask);
}

TrustedProxies resolve_trusted_proxies(const std::vector<std::string>& values,
                                       std::string_view flag) {
  TrustedProxies trusted;
  for (const std::string& v : values) {
    const std::string_view value(v);
    if (value.rfind("uid:", 0) == 0) {
      trusted.uids.push_back(resolve_peer_id(IdKind::user, std::string(value.substr(4)), flag));
    } else if (value.rfind("gid:", 0) == 0) {
      trusted.gids.push_back(resolve_peer_id(IdKind::group, std::string(value.substr(4)), flag));
    } else if (value.rfind("tcp:", 0) == 0) {
      const auto network = Cidr::parse(value.substr(4));
      if (!network) {
        throw StartupError(
            fmt::format("--{} {}: not an address or network (tcp:10.0.0.0/8, tcp:::1)", flag, v));
      }
      trusted.networks.push_back(*network);
    } else {
      throw StartupError(fmt::format("--{} {}: expected uid:USER, gid:GROUP or tcp:CIDR", flag, v));
    }
  }
  return trusted;
}

std::optional<ClientHeader> parse_client_header(std::string_view name) {
  for (const auto h :
       {ClientHeader::x_forwarded_for, ClientHeader::x_real_ip, ClientHeader::forwarded}) {
    if (boost::beast::iequals(name, client_header_name(h))) return h;
  }
  return std::nullopt;
}

}  // namespace printerfacts
