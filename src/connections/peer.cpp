#include "connections/peer.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace printerfacts {

Peer identify_peer(int fd, Transport transport) {
  Peer peer;
  sockaddr_storage ss{};
  // A Unix-socket peer is its credentials: its address is nothing (an unbound client), so the
  // getpeername() that would tell the family is spared when the listener already did.
  if (transport == Transport::unix_socket) {
    ss.ss_family = AF_UNIX;
  } else {
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return peer;
  }
  if (ss.ss_family == AF_UNIX) {
    ucred cred{};
    socklen_t cred_len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0) {
      peer.description = "unix:-";
      return peer;
    }
    peer.kind = Peer::Kind::unix_socket;
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    peer.description = fmt::format("unix:pid={},uid={},gid={}", cred.pid, cred.uid, cred.gid);
    return peer;
  }
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
    peer.kind = Peer::Kind::tcp;
    std::memcpy(peer.address.data(), &in6->sin6_addr, 16);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      ::inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof host);
      peer.description = fmt::format("tcp:{}:{}", host, ntohs(in6->sin6_port));
    } else {
      ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
      peer.description = fmt::format("tcp:[{}]:{}", host, ntohs(in6->sin6_port));
    }
  } else if (ss.ss_family == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(&ss);
    peer.kind = Peer::Kind::tcp;
    peer.address[10] = peer.address[11] = 0xff;
    std::memcpy(&peer.address[12], &in4->sin_addr, 4);
    ::inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host);
    peer.description = fmt::format("tcp:{}:{}", host, ntohs(in4->sin_port));
  }
  return peer;
}

bool trusts(const TrustedProxies& trusted, const Peer& peer) {
  switch (peer.kind) {
    case Peer::Kind::unix_socket:
      return std::find(trusted.uids.begin(), trusted.uids.end(), peer.uid) != trusted.uids.end() ||
             std::find(trusted.gids.begin(), trusted.gids.end(), peer.gid) != trusted.gids.end();
    case Peer::Kind::tcp:
      return std::any_of(trusted.networks.begin(), trusted.networks.end(),
                         [&](const Cidr& c) { return c.contains(peer.address); });
    case Peer::Kind::unknown:
      break;
  }
  return false;
}

}  // namespace printerfacts
