#define _GNU_SOURCE
/* The io_uring floor: the floor's work (answer every "\r\n\r\n" read with one canned response,
 * parse nothing) on io_uring as printerfacts' io_uring loop uses it: a multishot accept, a
 * receive per connection into its own buffer, the answers queued as sends, and one
 * io_uring_submit_and_wait() per turn, on a ring made with SINGLE_ISSUER | DEFER_TASKRUN. No
 * server on io_uring can do less per request; it bounds what that loop can reach. */
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char kResponse[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 43\r\n\r\n"
    "Printers can smell fear, but only in cyan.\n";
enum { kResponseSize = sizeof kResponse - 1, kMaxPipeline = 64 };

enum Kind { ACCEPT = 1, RECV = 2, SEND = 3 };

struct conn {
  int fd;
  char in[16384];
  char out[kMaxPipeline * kResponseSize];
};

static struct io_uring ring;

static struct io_uring_sqe* get_sqe(void) {
  struct io_uring_sqe* s;
  while ((s = io_uring_get_sqe(&ring)) == NULL) io_uring_submit(&ring);
  return s;
}

static uint64_t tag(void* p, enum Kind k) { return (uint64_t)(uintptr_t)p | (uint64_t)k; }

static void arm_recv(struct conn* c) {
  struct io_uring_sqe* s = get_sqe();
  io_uring_prep_recv(s, c->fd, c->in, sizeof c->in, 0);
  io_uring_sqe_set_data64(s, tag(c, RECV));
}

static void arm_accept(int lfd) {
  struct io_uring_sqe* s = get_sqe();
  io_uring_prep_multishot_accept(s, lfd, NULL, NULL, 0);
  io_uring_sqe_set_data64(s, ACCEPT);
}

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  int lfd;
  if (strncmp(argv[1], "unix:", 5) == 0) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    strncpy(a.sun_path, argv[1] + 5, sizeof a.sun_path - 1);
    unlink(a.sun_path);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(lfd, (struct sockaddr*)&a, sizeof a) != 0) return perror("bind"), 1;
  } else {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(strrchr(argv[1], ':') + 1))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    lfd = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(lfd, (struct sockaddr*)&a, sizeof a) != 0) return perror("bind"), 1;
  }
  listen(lfd, 4096);
  struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                                       IORING_SETUP_CQSIZE,
                              .cq_entries = 4096};
  int rc = io_uring_queue_init_params(256, &ring, &p);
  if (rc < 0) return fprintf(stderr, "io_uring_setup: %s\n", strerror(-rc)), 1;
  arm_accept(lfd);
  for (;;) {
    io_uring_submit_and_wait(&ring, 1);
    struct io_uring_cqe* cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&ring, head, cqe) {
      ++seen;
      uint64_t data = cqe->user_data;
      enum Kind kind = (enum Kind)(data & 7);
      struct conn* c = (struct conn*)(uintptr_t)(data & ~(uint64_t)7);
      if (kind == ACCEPT) {
        if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(lfd);
        if (cqe->res < 0) continue;
        c = aligned_alloc(8, sizeof *c);
        c->fd = cqe->res;
        int on = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);  /* fails on Unix: fine */
        arm_recv(c);
      } else if (kind == RECV) {
        int r = cqe->res;
        if (r <= 0) {
          close(c->fd);
          free(c);
          continue;
        }
        int requests = 0;
        for (int j = 3; j < r; ++j) {
          if (c->in[j] == '\n' && c->in[j - 1] == '\r' && c->in[j - 2] == '\n' && c->in[j - 3] == '\r')
            ++requests;
        }
        if (requests > kMaxPipeline) requests = kMaxPipeline;
        for (int k = 0; k < requests; ++k) memcpy(c->out + k * kResponseSize, kResponse, kResponseSize);
        if (requests > 0) {
          /* The send is linked ahead of the next receive and reports only failures: a
           * keep-alive request costs one completion, as in a loop that tracks nothing. */
          struct io_uring_sqe* s = get_sqe();
          io_uring_prep_send(s, c->fd, c->out, (size_t)requests * kResponseSize, MSG_NOSIGNAL | MSG_WAITALL);
          io_uring_sqe_set_data64(s, tag(c, SEND));
          s->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
        }
        arm_recv(c);
      }
      /* SEND: only a failure comes here; the linked receive fails too and closes. */
    }
    io_uring_cq_advance(&ring, seen);
  }
}
