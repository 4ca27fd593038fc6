#include "connections/proxy_protocol.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace printerfacts {
namespace {

// Version 2 begins with these 12 bytes, chosen never to begin anything else (an HTTP request,
// a TLS hello, a v1 line).
constexpr std::string_view kV2Signature("\r\n\r\n\0\r\nQUIT\n", 12);
constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::size_t kV1MaxLength = 107;  // the specification's bound, CRLF included
constexpr std::size_t kV2FixedLength = 16;

// The address in `text` (not NUL-terminated) of `family`, written in inet_ntop's form.
bool take_address(std::string_view text, int family, InlineText<46>& out) {
  char buffer[INET6_ADDRSTRLEN] = {};
  if (text.empty() || text.size() >= sizeof buffer) return false;
  if (text.find_first_not_of("0123456789abcdefABCDEF:.") != std::string_view::npos) return false;
  std::memcpy(buffer, text.data(), text.size());
  unsigned char binary[16];
  if (::inet_pton(family, buffer, binary) != 1) return false;
  char normal[INET6_ADDRSTRLEN];
  if (::inet_ntop(family, binary, normal, sizeof normal) == nullptr) return false;
  out.assign(normal);
  return true;
}

bool valid_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  unsigned value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

// "PROXY TCP4 SRC DST SPORT DPORT\r\n", "PROXY TCP6 ...", "PROXY UNKNOWN ...\r\n".
ProxyParse parse_v1(std::string_view data, ProxyHeader& out) {
  // The line's end: printable ASCII up to CRLF. Any other byte (a bare LF, a NUL, which would
  // end an address early for inet_pton) is malformed as soon as it arrives, so that a header
  // read in pieces gets the same answer as one read whole.
  std::size_t end = std::string_view::npos;
  const std::size_t limit = std::min(data.size(), kV1MaxLength);
  for (std::size_t i = 0; i < limit; ++i) {
    const auto c = static_cast<unsigned char>(data[i]);
    if (c == '\r') {
      if (i + 1 == data.size()) return ProxyParse::need_more;
      if (data[i + 1] != '\n') return ProxyParse::malformed;
      end = i;
      break;
    }
    if (c < 0x20 || c > 0x7e) return ProxyParse::malformed;
  }
  if (end == std::string_view::npos) {
    return data.size() >= kV1MaxLength ? ProxyParse::oversized : ProxyParse::need_more;
  }
  std::string_view line = data.substr(kV1Prefix.size(), end - kV1Prefix.size());
  std::string_view fields[6];
  std::size_t n = 0;
  while (n < 6) {
    const std::size_t space = line.find(' ');
    fields[n++] = line.substr(0, space);
    if (space == std::string_view::npos) {
      line = {};
      break;
    }
    line.remove_prefix(space + 1);
  }
  if (!line.empty()) return ProxyParse::malformed;  // more than six fields
  out = ProxyHeader{};
  out.length = end + 2;
  // UNKNOWN: the proxy does not know (or will not say) the client; the rest is to be ignored.
  if (n >= 1 && fields[0] == "UNKNOWN") return ProxyParse::done;
  if (n != 5) return ProxyParse::malformed;
  const int family = fields[0] == "TCP4" ? AF_INET : fields[0] == "TCP6" ? AF_INET6 : -1;
  if (family < 0) return ProxyParse::malformed;
  InlineText<46> destination;
  if (!take_address(fields[1], family, out.client) ||
      !take_address(fields[2], family, destination) || !valid_port(fields[3]) ||
      !valid_port(fields[4])) {
    out.client = {};
    return ProxyParse::malformed;
  }
  return ProxyParse::done;
}

// The 16-byte fixed part, then the addresses and TLVs its length field counts.
ProxyParse parse_v2(std::string_view data, ProxyHeader& out) {
  if (data.size() < kV2FixedLength) return ProxyParse::need_more;
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(data[i]); };
  const unsigned version = byte(12) >> 4, command = byte(12) & 0x0f;
  if (version != 2 || command > 1) return ProxyParse::malformed;
  const unsigned family = byte(13) >> 4, transport = byte(13) & 0x0f;
  if (family > 3 || transport > 2) return ProxyParse::malformed;
  const std::size_t length = kV2FixedLength + ((std::size_t{byte(14)} << 8) | byte(15));
  if (length > kMaxProxyHeader) return ProxyParse::oversized;
  // The address block each family needs at least (TLVs may follow it).
  static constexpr std::size_t kAddressLength[] = {0, 12, 36, 216};
  if (length - kV2FixedLength < kAddressLength[family]) return ProxyParse::malformed;
  if (data.size() < length) return ProxyParse::need_more;
  out = ProxyHeader{};
  out.length = length;
  // LOCAL: the proxy speaking for itself (a health check): no client, whatever follows. An
  // unspecified family or transport, or a Unix-socket source: no address to log.
  if (command == 0 || transport == 0 || (family != 1 && family != 2)) return ProxyParse::done;
  char text[INET6_ADDRSTRLEN];
  if (::inet_ntop(family == 1 ? AF_INET : AF_INET6, data.data() + kV2FixedLength, text,
                  sizeof text) == nullptr) {
    return ProxyParse::malformed;
  }
  out.client.assign(text);
  return ProxyParse::done;
}

}  // namespace

ProxyParse parse_proxy_header(std::string_view data, ProxyHeader& out) {
  if (data.empty()) return ProxyParse::need_more;
  // Which version, from as many bytes as have come: a prefix of either signature may still
  // become one; anything else is no PROXY header at all.
  const auto begins = [&](std::string_view signature) {
    const std::size_t n = std::min(data.size(), signature.size());
    return data.substr(0, n) == signature.substr(0, n);
  };
  if (begins(kV2Signature)) {
    return data.size() < kV2Signature.size() ? ProxyParse::need_more : parse_v2(data, out);
  }
  if (begins(kV1Prefix)) {
    return data.size() < kV1Prefix.size() ? ProxyParse::need_more : parse_v1(data, out);
  }
  return ProxyParse::missing;
}

}  // namespace printerfacts
