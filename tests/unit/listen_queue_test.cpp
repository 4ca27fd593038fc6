#include "metrics/listen_queue.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "listeners/unix_socket.hpp"
#include "metrics/metrics.hpp"
#include "temp_dir.hpp"
#include "util/unique_fd.hpp"

namespace printerfacts {
namespace {

UniqueFd connect_unix(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return UniqueFd();
  return fd;
}

// The backlog filled for real: a listening socket nobody accepts on, and clients connecting
// until the kernel refuses them, as nginx's connect() is refused with a full queue.
TEST(ListenQueue, AFullUnixBacklogShowsInTheGaugesNginxWouldHit) {
  testing::TempDir dir;
  const std::string path = dir / "q.sock";
  BoundUnixSocket listener =
      bind_unix_socket(path, UnixSocketOptions{.mode = 0600, .group = std::nullopt, .backlog = 4});
  const auto inode = socket_inode(listener.fd.get());
  ASSERT_TRUE(inode);
  ASSERT_EQ(unix_listen_queue(*inode)->pending, 0u);
  EXPECT_EQ(unix_listen_queue(*inode)->backlog, 4u);

  std::vector<UniqueFd> clients;
  for (int i = 0; i < 10; ++i) {
    UniqueFd c = connect_unix(path);
    if (!c.valid()) break;  // EAGAIN: the queue is full
    clients.push_back(std::move(c));
  }
  // Linux lets a Unix listener queue one more than its backlog before refusing.
  EXPECT_GE(clients.size(), 4u);
  EXPECT_LT(clients.size(), 10u) << "the queue never filled";
  EXPECT_EQ(unix_listen_queue(*inode)->pending, clients.size());

  // The same through the exposition a scrape gets.
  Metrics metrics({{"unix:" + path, true, inode}}, 1);
  const std::string text = metrics.render();
  const std::string label = "{listener=\"unix:" + path + "\"} ";
  EXPECT_NE(text.find("printerfacts_listen_queue_pending" + label + std::to_string(clients.size())),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("printerfacts_listen_queue_backlog" + label + "4"), std::string::npos);
}

TEST(ListenQueue, ATcpListenersQueueToo) {
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 7), 0);
  socklen_t len = sizeof addr;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  // connect() returns once the client has sent its last ACK; the listener queues the connection
  // when that ACK is processed, which on a loaded machine may be a moment later.
  const auto inode = *socket_inode(listener.get());
  std::optional<ListenQueue> queue;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    queue = tcp_listen_queue(inode);
    if (queue && queue->pending == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  } while (std::chrono::steady_clock::now() < deadline);
  ASSERT_TRUE(queue);
  EXPECT_EQ(queue->pending, 1u);
  EXPECT_EQ(queue->backlog, 7u);
}

TEST(ListenQueue, AnUnknownSocketIsNotReported) {
  EXPECT_FALSE(unix_listen_queue(1));  // no socket has inode 1
}

}  // namespace
}  // namespace printerfacts
