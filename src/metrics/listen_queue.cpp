#include "metrics/listen_queue.hpp"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstring>

#include "util/unique_fd.hpp"

namespace printerfacts {
namespace {

// Sends one sock_diag request and calls `visit` with each answer's payload until the kernel
// says it is done; false when netlink cannot be used or the kernel refused the request.
template <class Request, class Visit>
bool sock_diag(const Request& request, bool dump, Visit visit) {
  UniqueFd nl(::socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!nl.valid()) return false;
  struct {
    nlmsghdr header;
    Request body;
  } message{};
  message.header.nlmsg_len = sizeof message;
  message.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  message.header.nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : 0);
  message.body = request;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(nl.get(), &message, sizeof message, 0, reinterpret_cast<sockaddr*>(&kernel),
               sizeof kernel) != static_cast<ssize_t>(sizeof message)) {
    return false;
  }
  alignas(nlmsghdr) char buffer[32768];
  for (;;) {
    const ssize_t n = ::recv(nl.get(), buffer, sizeof buffer, 0);
    if (n <= 0) return false;
    auto len = static_cast<unsigned>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
      if (h->nlmsg_type == NLMSG_DONE) return true;
      if (h->nlmsg_type == NLMSG_ERROR) return false;
      visit(NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN);
      if (!dump) return true;
    }
  }
}

}  // namespace

std::optional<ino_t> socket_inode(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return std::nullopt;
  return st.st_ino;
}

std::optional<ListenQueue> unix_listen_queue(ino_t inode) {
  unix_diag_req request{};
  request.sdiag_family = AF_UNIX;
  request.udiag_states = 1u << TCP_LISTEN;  // a Unix stream socket's listening state too
  request.udiag_ino = static_cast<__u32>(inode);
  request.udiag_show = UDIAG_SHOW_RQLEN;
  request.udiag_cookie[0] = request.udiag_cookie[1] = INET_DIAG_NOCOOKIE;
  std::optional<ListenQueue> found;
  sock_diag(request, false, [&](const void* data, unsigned size) {
    if (size < sizeof(unix_diag_msg)) return;
    const auto* msg = static_cast<const unix_diag_msg*>(data);
    if (msg->udiag_ino != inode) return;
    unsigned rest = size - NLMSG_ALIGN(sizeof *msg);
    for (auto* a = reinterpret_cast<const rtattr*>(reinterpret_cast<const char*>(msg) +
                                                   NLMSG_ALIGN(sizeof *msg));
         RTA_OK(a, rest); a = RTA_NEXT(a, rest)) {
      if (a->rta_type == UNIX_DIAG_RQLEN && RTA_PAYLOAD(a) >= sizeof(unix_diag_rqlen)) {
        unix_diag_rqlen q{};
        std::memcpy(&q, RTA_DATA(a), sizeof q);
        // For a listening socket the kernel reports the accept queue and its limit.
        found = ListenQueue{q.udiag_rqueue, q.udiag_wqueue};
      }
    }
  });
  return found;
}

std::optional<ListenQueue> tcp_listen_queue(ino_t inode) {
  std::optional<ListenQueue> found;
  for (const int family : {AF_INET6, AF_INET}) {
    inet_diag_req_v2 request{};
    request.sdiag_family = static_cast<__u8>(family);
    request.sdiag_protocol = IPPROTO_TCP;
    request.idiag_states = 1u << TCP_LISTEN;
    sock_diag(request, true, [&](const void* data, unsigned size) {
      if (size < sizeof(inet_diag_msg)) return;
      const auto* msg = static_cast<const inet_diag_msg*>(data);
      // For a listener, rqueue is the accept queue and wqueue its limit (ss -tl).
      if (msg->idiag_inode == inode) found = ListenQueue{msg->idiag_rqueue, msg->idiag_wqueue};
    });
    if (found) break;
  }
  return found;
}

}  // namespace printerfacts
