#include "connections/proxy_protocol.hpp"

#include <gtest/gtest.h>

#include <string>

namespace printerfacts {
namespace {

using namespace std::string_literals;

ProxyParse parse(const std::string& data, ProxyHeader* out = nullptr) {
  ProxyHeader h;
  const ProxyParse r = parse_proxy_header(data, h);
  if (out) *out = h;
  return r;
}

// A v2 header: signature, version and command, family and transport, then `body`.
std::string v2(unsigned char ver_cmd, unsigned char family, const std::string& body) {
  std::string h("\r\n\r\n\0\r\nQUIT\n"s);
  h += static_cast<char>(ver_cmd);
  h += static_cast<char>(family);
  h += static_cast<char>(body.size() >> 8);
  h += static_cast<char>(body.size() & 0xff);
  return h + body;
}

const std::string kTcp4Body = "\xc0\x00\x02\x01\xc0\x00\x02\x02\xdc\x04\x01\xbb"s;  // 192.0.2.1

TEST(ProxyProtocol, Version1NamesTheClient) {
  ProxyHeader h;
  const std::string line = "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n";
  EXPECT_EQ(parse(line + "GET / HTTP/1.1\r\n", &h), ProxyParse::done);
  EXPECT_EQ(h.length, line.size());
  EXPECT_EQ(h.client.view(), "192.0.2.1");
  EXPECT_EQ(parse("PROXY TCP6 2001:DB8:0::1 2001:db8::2 1 65535\r\n", &h), ProxyParse::done);
  EXPECT_EQ(h.client.view(), "2001:db8::1") << "normalised";
  EXPECT_EQ(parse("PROXY UNKNOWN\r\n", &h), ProxyParse::done);
  EXPECT_TRUE(h.client.empty());
  EXPECT_EQ(parse("PROXY UNKNOWN ffff:f...f ffff:f...f 65535 65535\r\n", &h), ProxyParse::done);
  EXPECT_TRUE(h.client.empty());
}

TEST(ProxyProtocol, Version1IsStrict) {
  for (const char* bad : {
           "PROXY TCP4 192.0.2.1 192.0.2.2 56324\r\n",        // a field short
           "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443 7\r\n",  // a field more
           "PROXY TCP4  192.0.2.1 192.0.2.2 56324 443\r\n",   // two spaces
           "PROXY TCP4 2001:db8::1 192.0.2.2 56324 443\r\n",  // the wrong family
           "PROXY TCP6 192.0.2.1 192.0.2.2 56324 443\r\n",    // the wrong family
           "PROXY TCP4 192.0.2.1 192.0.2.2 65536 443\r\n",    // port out of range
           "PROXY TCP4 192.0.2.1 192.0.2.2 0443 443\r\n",     // leading zero
           "PROXY TCP4 192.0.2.1 192.0.2.2 -1 443\r\n",       // not a number
           "PROXY UDP4 192.0.2.1 192.0.2.2 1 2\r\n",          // no such protocol
           "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",            // bare LF
           "PROXY TCP4 192.0.2.256 192.0.2.2 1 2\r\n",        // not an address
       }) {
    EXPECT_EQ(parse(bad), ProxyParse::malformed) << bad;
  }
  EXPECT_EQ(parse("PROXY TCP4 " + std::string(120, '1')), ProxyParse::oversized);
  // Found by the fuzzer: a NUL ends an address early for inet_pton, and read whole the line
  // was taken; read in pieces its LF was refused. Any byte but printable ASCII is malformed.
  const std::string nul = "PROXY TCP6 2001:db::1 2001:db8::2\0\n 1 65535\r\n"s;
  EXPECT_EQ(parse(nul), ProxyParse::malformed);
  EXPECT_EQ(parse(nul.substr(0, 34)), ProxyParse::malformed);
}

TEST(ProxyProtocol, WaitsForMoreOnlyWhileItCanStillBeAHeader) {
  const std::string line = "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n";
  for (std::size_t n = 0; n < line.size(); ++n) {
    EXPECT_EQ(parse(line.substr(0, n)), ProxyParse::need_more) << n;
  }
  const std::string h = v2(0x21, 0x11, kTcp4Body);
  for (std::size_t n = 0; n < h.size(); ++n) {
    EXPECT_EQ(parse(h.substr(0, n)), ProxyParse::need_more) << n;
  }
  EXPECT_EQ(parse("GET / HTTP/1.1\r\n"), ProxyParse::missing);
  EXPECT_EQ(parse("P"), ProxyParse::need_more);
  EXPECT_EQ(parse("PROXZ"), ProxyParse::missing);
  EXPECT_EQ(parse("\r\n\r\nX"), ProxyParse::missing);
}

TEST(ProxyProtocol, Version2NamesTheClient) {
  ProxyHeader h;
  const std::string header = v2(0x21, 0x11, kTcp4Body);
  EXPECT_EQ(parse(header + "GET /", &h), ProxyParse::done);
  EXPECT_EQ(h.length, 28u);
  EXPECT_EQ(h.client.view(), "192.0.2.1");
  std::string six(36, '\0');
  six[0] = '\x20';
  six[1] = '\x01';
  six[2] = '\x0d';
  six[3] = '\xb8';
  six[15] = '\x01';
  EXPECT_EQ(parse(v2(0x21, 0x21, six), &h), ProxyParse::done);
  EXPECT_EQ(h.client.view(), "2001:db8::1");
  // TLVs after the addresses are skipped.
  EXPECT_EQ(parse(v2(0x21, 0x11,
                     kTcp4Body + "\x05\x00\x03"
                                 "abc"s),
                  &h),
            ProxyParse::done);
  EXPECT_EQ(h.length, 34u);
  EXPECT_EQ(h.client.view(), "192.0.2.1");
}

TEST(ProxyProtocol, Version2LocalAndUnspecifiedNameNoClient) {
  ProxyHeader h;
  EXPECT_EQ(parse(v2(0x20, 0x00, ""), &h), ProxyParse::done);
  EXPECT_TRUE(h.client.empty());
  EXPECT_EQ(parse(v2(0x20, 0x11, kTcp4Body), &h), ProxyParse::done) << "LOCAL ignores addresses";
  EXPECT_TRUE(h.client.empty());
  EXPECT_EQ(parse(v2(0x21, 0x00, ""), &h), ProxyParse::done);
  EXPECT_TRUE(h.client.empty());
  EXPECT_EQ(parse(v2(0x21, 0x31, std::string(216, '\0')), &h), ProxyParse::done);
  EXPECT_TRUE(h.client.empty()) << "a Unix-socket source has no address";
}

TEST(ProxyProtocol, Version2IsStrictAndBounded) {
  EXPECT_EQ(parse(v2(0x11, 0x11, kTcp4Body)), ProxyParse::malformed) << "version 1 in a v2 header";
  EXPECT_EQ(parse(v2(0x22, 0x11, kTcp4Body)), ProxyParse::malformed) << "no command 2";
  EXPECT_EQ(parse(v2(0x21, 0x41, kTcp4Body)), ProxyParse::malformed) << "no family 4";
  EXPECT_EQ(parse(v2(0x21, 0x13, kTcp4Body)), ProxyParse::malformed) << "no transport 3";
  EXPECT_EQ(parse(v2(0x21, 0x11, kTcp4Body.substr(0, 8))), ProxyParse::malformed)
      << "shorter than its addresses";
  EXPECT_EQ(parse(v2(0x21, 0x21, std::string(20, '\0'))), ProxyParse::malformed);
  std::string huge("\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff"s);
  EXPECT_EQ(parse(huge), ProxyParse::oversized) << "refused from the length alone";
  EXPECT_EQ(parse(v2(0x21, 0x11, kTcp4Body + std::string(kMaxProxyHeader - 16 - 12 + 1, 'x'))),
            ProxyParse::oversized);
  EXPECT_EQ(parse(v2(0x21, 0x11, kTcp4Body + std::string(kMaxProxyHeader - 16 - 12, 'x'))),
            ProxyParse::done);
}

}  // namespace
}  // namespace printerfacts
