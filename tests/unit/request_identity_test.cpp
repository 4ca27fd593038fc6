#include "connections/request_identity.hpp"

#include <gtest/gtest.h>

#include "config/trusted_proxies.hpp"
#include "connections/peer.hpp"

namespace printerfacts {
namespace {

// The client `header` names in a request with one field line per entry of `lines`.
std::string client_of(ClientHeader header, std::initializer_list<std::string_view> lines) {
  Request req{http::verb::get, "/", 11};
  for (const auto line : lines) req.insert(client_header_name(header), line);
  InlineText<46> out;
  return forwarded_client(req, header, out) ? std::string(out.view()) : std::string("(none)");
}

TEST(ForwardedClient, XForwardedForTakesTheRightmostEntryOfTheLastLine) {
  const auto xff = ClientHeader::x_forwarded_for;
  EXPECT_EQ(client_of(xff, {"192.0.2.7"}), "192.0.2.7");
  // nginx's $proxy_add_x_forwarded_for: the client's own claim, then the address nginx saw.
  EXPECT_EQ(client_of(xff, {"6.6.6.6, 192.0.2.7"}), "192.0.2.7") << "the leftmost is a claim";
  EXPECT_EQ(client_of(xff, {"6.6.6.6", "192.0.2.7"}), "192.0.2.7") << "lines are one list";
  EXPECT_EQ(client_of(xff, {" 2001:DB8:0:0::1 "}), "2001:db8::1") << "normalised";
  EXPECT_EQ(client_of(xff, {"192.0.2.7, evil.example"}), "(none)");
  EXPECT_EQ(client_of(xff, {"192.0.2.7,"}), "(none)");
  EXPECT_EQ(client_of(xff, {"192.0.2.7:80"}), "(none)");
  EXPECT_EQ(client_of(xff, {"<script>"}), "(none)");
  EXPECT_EQ(client_of(xff, {}), "(none)");
}

TEST(ForwardedClient, XRealIpIsOneAddressOnOneLine) {
  const auto xri = ClientHeader::x_real_ip;
  EXPECT_EQ(client_of(xri, {"192.0.2.7"}), "192.0.2.7");
  EXPECT_EQ(client_of(xri, {"192.0.2.7", "192.0.2.8"}), "(none)") << "which one? neither";
  EXPECT_EQ(client_of(xri, {"192.0.2.7, 192.0.2.8"}), "(none)");
}

TEST(ForwardedClient, ForwardedTakesForOfTheLastElement) {
  // RFC 7239 §4 and §6, and its examples in §7.
  const auto fwd = ClientHeader::forwarded;
  EXPECT_EQ(client_of(fwd, {"for=192.0.2.60;proto=http;by=203.0.113.43"}), "192.0.2.60");
  EXPECT_EQ(client_of(fwd, {"for=192.0.2.43, for=198.51.100.17"}), "198.51.100.17");
  EXPECT_EQ(client_of(fwd, {"For=\"[2001:db8:cafe::17]:4711\""}), "2001:db8:cafe::17");
  EXPECT_EQ(client_of(fwd, {"for=\"192.0.2.43:47011\""}), "192.0.2.43");
  EXPECT_EQ(client_of(fwd, {"proto=https;for=192.0.2.9"}), "192.0.2.9");
  EXPECT_EQ(client_of(fwd, {"for=unknown"}), "(none)");
  EXPECT_EQ(client_of(fwd, {"for=_hidden"}), "(none)");
  EXPECT_EQ(client_of(fwd, {"for=2001:db8::1"}), "(none)") << "IPv6 must be bracketed";
  EXPECT_EQ(client_of(fwd, {"by=192.0.2.1"}), "(none)");
}

TEST(RequestId, OnlyShortSafeIdsAreTaken) {
  EXPECT_TRUE(valid_request_id("a"));
  EXPECT_TRUE(valid_request_id("3f2a9c1e-77b0.4_d"));
  EXPECT_TRUE(valid_request_id(std::string(64, 'x')));
  EXPECT_FALSE(valid_request_id(std::string(65, 'x')));
  EXPECT_FALSE(valid_request_id(""));
  EXPECT_FALSE(valid_request_id("a b"));
  EXPECT_FALSE(valid_request_id("a\"b"));
  EXPECT_FALSE(valid_request_id("a\r\nSet-Cookie: x"));
}

TEST(RequestId, GeneratedIdsAre32HexDigitsAndDiffer) {
  Random rng(1);
  RequestIdLine a, b;
  a.generate(rng);
  b.generate(rng);
  EXPECT_EQ(a.id().size(), 32u);
  EXPECT_EQ(a.id().find_first_not_of("0123456789abcdef"), std::string_view::npos);
  EXPECT_NE(a.id(), b.id());
  EXPECT_EQ(a.line(), "X-Request-Id: " + std::string(a.id()) + "\r\n");
  RequestIdLine taken;
  taken.take(std::string(64, 'z'));
  EXPECT_EQ(taken.id(), std::string(64, 'z')) << "the longest accepted ID fits";
}

TEST(TraceParent, TheTraceIdOfAValidValue) {
  // The example of W3C Trace Context §3.2.
  const std::string_view ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  EXPECT_EQ(trace_id_of(ok), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(trace_id_of("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future"),
            "4bf92f3577b34da6a3ce929d0e0e4736")
      << "a later version may add fields";
  EXPECT_EQ(trace_id_of("00-00000000000000000000000000000000-00f067aa0ba902b7-01"), "");
  EXPECT_EQ(trace_id_of("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"), "");
  EXPECT_EQ(trace_id_of("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"), "");
  EXPECT_EQ(trace_id_of("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), "");
  EXPECT_EQ(trace_id_of(std::string(ok) + "-x"), "") << "version 00 has exactly four fields";
  EXPECT_EQ(trace_id_of("garbage"), "");
}

TEST(TrustedProxies, ParsedAndMatchedByKernelFacts) {
  const TrustedProxies t =
      resolve_trusted_proxies({"uid:0", "gid:33", "tcp:10.0.0.0/8", "tcp:::1"});
  EXPECT_EQ(t.uids, std::vector<uid_t>{0});
  EXPECT_EQ(t.gids, std::vector<gid_t>{33});
  Peer unix_peer{.description = "", .kind = Peer::Kind::unix_socket, .uid = 1000, .gid = 33};
  EXPECT_TRUE(trusts(t, unix_peer)) << "by primary group";
  unix_peer.gid = 1000;
  EXPECT_FALSE(trusts(t, unix_peer));
  Peer tcp_peer{.description = "", .kind = Peer::Kind::tcp};
  tcp_peer.address = Cidr::parse("10.1.2.3")->address;
  EXPECT_TRUE(trusts(t, tcp_peer));
  tcp_peer.address = Cidr::parse("11.1.2.3")->address;
  EXPECT_FALSE(trusts(t, tcp_peer));
  tcp_peer.address = Cidr::parse("::1")->address;
  EXPECT_TRUE(trusts(t, tcp_peer));
  EXPECT_FALSE(trusts(TrustedProxies{}, unix_peer)) << "default: nobody";
}

TEST(TrustedProxies, MalformedValuesAreStartupErrorsNamingThem) {
  for (const char* bad : {"10.0.0.0/8", "tcp:10.0.0.1/8", "tcp:10.0.0.0/33", "tcp:host.example",
                          "uid:no-such-user-xyz", "gid:", "tcp:"}) {
    try {
      resolve_trusted_proxies({bad});
      ADD_FAILURE() << bad << " accepted";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(std::string(bad).substr(4)), std::string::npos)
          << e.what();
    }
  }
  EXPECT_EQ(Cidr::parse("192.0.2.0/24")->prefix, 96u + 24u);
  EXPECT_FALSE(Cidr::parse("192.0.2.0/24x"));
}

}  // namespace
}  // namespace printerfacts
