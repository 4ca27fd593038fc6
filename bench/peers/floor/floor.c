#define _GNU_SOURCE
/* The floor: an epoll server that answers every "\r\n\r\n" it reads with one canned response and
 * parses nothing. No HTTP server can do less work per request; it bounds what is possible. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char kResponse[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 43\r\n\r\n"
    "Printers can smell fear, but only in cyan.\n";

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  int lfd;
  if (strncmp(argv[1], "unix:", 5) == 0) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, argv[1] + 5, sizeof a.sun_path - 1);
    unlink(a.sun_path);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (bind(lfd, (struct sockaddr*)&a, sizeof a) != 0) return perror("bind"), 1;
  } else {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(strrchr(argv[1], ':') + 1))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int on = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(lfd, (struct sockaddr*)&a, sizeof a) != 0) return perror("bind"), 1;
  }
  listen(lfd, 4096);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  struct epoll_event events[256];
  char buf[16384];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        int c;
        while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          int on = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
        }
        continue;
      }
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) {
        close(fd);
        continue;
      }
      int requests = 0;
      for (ssize_t j = 3; j < r; ++j) {
        if (buf[j] == '\n' && buf[j - 1] == '\r' && buf[j - 2] == '\n' && buf[j - 3] == '\r') ++requests;
      }
      for (int k = 0; k < requests; ++k) {
        if (write(fd, kResponse, sizeof kResponse - 1) < 0) break;
      }
    }
  }
}
