// The one cause of nginx's 502s a socket server cannot see from its own accept loop: a full
// listen queue, which makes connect() fail at once. The kernel reports a listening socket's
// queue through sock_diag (what `ss -xl` and `ss -tl` show), read here at scrape time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace printerfacts {

struct ListenQueue {
  std::uint32_t pending = 0;  ///< connections completed and waiting for accept()
  std::uint32_t backlog = 0;  ///< the most that may wait (listen()'s backlog, capped by somaxconn)
};

/// The inode of the socket `fd`: how sock_diag names it.
std::optional<ino_t> socket_inode(int fd);

/// The queue of the listening Unix socket with inode `inode` (sock_diag, UDIAG_SHOW_RQLEN), or
/// of the listening TCP socket (inet_diag). std::nullopt when the kernel will not say: the
/// socket belongs to another network namespace (sock_diag answers only for our own, so a socket
/// systemd created outside a PrivateNetwork= service is invisible to it), or netlink sockets
/// are not allowed (RestrictAddressFamilies=AF_UNIX).
std::optional<ListenQueue> unix_listen_queue(ino_t inode);
std::optional<ListenQueue> tcp_listen_queue(ino_t inode);

}  // namespace printerfacts
