// Any first bytes of a connection from a --proxy-protocol peer: parse_proxy_header() decides
// without reading past what it was given, and what it accepts is consistent: a length within
// the data and the bound, a client that is an address; fed a byte at a time, it reaches the
// same decision as fed at once (a header split across reads is the same header).
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "connections/proxy_protocol.hpp"

using printerfacts::ProxyHeader;
using printerfacts::ProxyParse;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  ProxyHeader whole;
  const ProxyParse at_once = printerfacts::parse_proxy_header(text, whole);
  if (at_once == ProxyParse::done) {
    if (whole.length == 0 || whole.length > size || whole.length > printerfacts::kMaxProxyHeader) {
      __builtin_trap();
    }
    if (!whole.client.empty()) {
      const std::string client(whole.client.view());
      unsigned char binary[16];
      if (::inet_pton(AF_INET, client.c_str(), binary) != 1 &&
          ::inet_pton(AF_INET6, client.c_str(), binary) != 1) {
        __builtin_trap();
      }
    }
  }
  // Growing prefixes: "need more" until the same final decision, never a different one.
  for (std::size_t n = 0; n <= size; ++n) {
    ProxyHeader part;
    const ProxyParse r = printerfacts::parse_proxy_header(text.substr(0, n), part);
    if (r == ProxyParse::need_more) continue;
    if (r != at_once) __builtin_trap();
    if (r == ProxyParse::done &&
        (part.length != whole.length || part.client.view() != whole.client.view())) {
      __builtin_trap();
    }
    break;
  }
  return 0;
}
