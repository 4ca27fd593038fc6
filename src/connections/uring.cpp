#include "connections/uring.hpp"

#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <system_error>

#include "connections/uring_socket.hpp"

namespace printerfacts {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;

// The ring's flags. SINGLE_ISSUER and DEFER_TASKRUN (Linux 6.1): completions are posted only
// when the worker's own thread enters the kernel to wait, not by interrupting it whenever a
// peer's data arrives; R_DISABLED so that the ring, made on the main thread where a failure can
// still stop the start, is bound to the worker's thread by enable().
constexpr unsigned kSetupFlags =
    IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
constexpr unsigned kSubmissionEntries = 256;
// Room for a completion per connection of a busy worker in one turn; more wait in the kernel
// (IORING_FEAT_NODROP), they are not lost.
constexpr unsigned kCompletionEntries = 4096;

int make_ring(io_uring& ring) {
  io_uring_params params{};
  params.flags = kSetupFlags | IORING_SETUP_CQSIZE;
  params.cq_entries = kCompletionEntries;
  return io_uring_queue_init_params(kSubmissionEntries, &ring, &params);
}

std::string read_sysctl(const char* path) {
  std::ifstream in(path);
  std::string value;
  in >> value;
  return value;
}

error_code errno_code(int e) {
  if (e == ECANCELED) return asio::error::operation_aborted;
  return {e, boost::system::system_category()};
}

}  // namespace

const char* io_backend_name(IoBackend backend) {
  return backend == IoBackend::io_uring ? "io_uring" : "epoll";
}

std::string Ring::unavailable_reason() {
  io_uring ring{};
  const int rc = make_ring(ring);
  if (rc == 0) {
    io_uring_queue_exit(&ring);
    return {};
  }
  const int e = -rc;
  const std::string disabled = read_sysctl("/proc/sys/kernel/io_uring_disabled");
  switch (e) {
    case ENOSYS:
      return "io_uring_setup(2) is not available (ENOSYS): a kernel built without io_uring, or "
             "a seccomp filter that refuses it (container runtimes' default profiles do)";
    case EPERM:
      if (disabled == "2") return "io_uring is disabled for everyone (kernel.io_uring_disabled=2)";
      if (disabled == "1") {
        return "io_uring is disabled for processes outside the io_uring group "
               "(kernel.io_uring_disabled=1, kernel.io_uring_group)";
      }
      return "io_uring_setup(2) is refused (EPERM): a seccomp filter or security module "
             "forbids it";
    case EINVAL:
      return "the kernel is older than 6.1: no IORING_SETUP_DEFER_TASKRUN (EINVAL)";
    default:
      return std::string("io_uring_setup(2) failed: ") + std::strerror(e);
  }
}

Ring::Ring() {
  if (const int rc = make_ring(ring_); rc < 0) {
    throw std::system_error(-rc, std::generic_category(), "io_uring_setup");
  }
  // Blocking: the ring's read of a non-blocking file would fail with EAGAIN instead of waiting.
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC);
  if (wake_fd_ < 0) {
    const int e = errno;
    io_uring_queue_exit(&ring_);
    throw std::system_error(e, std::generic_category(), "eventfd");
  }
  wake_op_.ring = this;
  wake_op_.complete = [](UringOp* op, int, unsigned) {
    // Posted work is run by the loop after this turn; the read is made again for the next.
    static_cast<WakeOp*>(op)->ring->arm_wake();
  };
}

Ring::~Ring() {
  close();
  while (orphans_ != nullptr) {
    UringConn* c = orphans_;
    orphans_ = c->next_orphan_;
    if (!c->close_queued_) ::close(c->fd_);
    delete c;
  }
  ::close(wake_fd_);
}

void Ring::enable() {
  // io_uring_enable_rings() is declared by liburing 2.3 but not exported by its library.
  if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) <
      0) {
    throw std::system_error(errno, std::generic_category(), "IORING_REGISTER_ENABLE_RINGS");
  }
  arm_wake();
}

void Ring::arm_wake() {
  io_uring_sqe* s = sqe();
  io_uring_prep_read(s, wake_fd_, &wake_value_, sizeof wake_value_, 0);
  io_uring_sqe_set_data(s, &wake_op_);
}

void Ring::wake() {
  const std::uint64_t one = 1;
  // EAGAIN only when the counter is full, and then a wake-up is pending anyway.
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

io_uring_sqe* Ring::sqe() {
  if (dead_) {
    // After close(): whatever is prepared here goes nowhere.
    if (!scratch_) scratch_ = std::make_unique<io_uring_sqe>();
    *scratch_ = {};
    return scratch_.get();
  }
  for (;;) {
    if (io_uring_sqe* s = io_uring_get_sqe(&ring_)) return last_sqe_ = s;
    io_uring_submit(&ring_);
    last_sqe_ = nullptr;
  }
}

bool Ring::submit_and_wait(std::chrono::nanoseconds timeout) {
  if (dead_) return false;
  timeout = std::max(timeout, std::chrono::nanoseconds(0));
  // Waiting for the quiet completions too could hold up another event while one of them is
  // slow (its peer does not read): never for longer than this.
  if (quiet_ > 0) timeout = std::min<std::chrono::nanoseconds>(timeout, kQuietWait);
  __kernel_timespec ts{};
  ts.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(timeout).count();
  ts.tv_nsec = (timeout % std::chrono::seconds(1)).count();
  io_uring_cqe* cqe = nullptr;
  // -ETIME (the timeout) and -EINTR need nothing: the loop looks at its clock and goes on.
  const int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1 + quiet_, &ts, nullptr);
  quiet_ = 0;
  last_sqe_ = nullptr;
  ++turn_;
  return rc == -ETIME;
}

void Ring::dispatch() {
  if (dead_) return;
  struct Completion {
    std::uint64_t data;
    int result;
    unsigned flags;
  };
  // Copied out and marked seen before any is called: a completion may submit, and must find
  // the queue consistent. Only memory is read here, never the kernel entered.
  Completion batch[64];
  for (;;) {
    unsigned n = 0;
    unsigned head;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      batch[n++] = {cqe->user_data, cqe->res, cqe->flags};
      if (n == std::size(batch)) break;
    }
    if (n == 0) return;
    io_uring_cq_advance(&ring_, n);
    for (unsigned i = 0; i < n; ++i) {
      if (batch[i].data == 0) continue;
      auto* op = reinterpret_cast<UringOp*>(batch[i].data);
      op->complete(op, batch[i].result, batch[i].flags);
    }
  }
}

void Ring::cancel(const UringOp& op) {
  io_uring_sqe* s = sqe();
  io_uring_prep_cancel(s, const_cast<UringOp*>(&op), 0);
  io_uring_sqe_set_data64(s, 0);
  s->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void Ring::adopt(UringConn* conn, CoarseClock::duration grace) {
  conn->orphaned_ = true;
  conn->orphan_deadline_ = CoarseClock::now() + grace;
  conn->next_orphan_ = orphans_;
  if (orphans_) orphans_->prev_orphan_ = conn;
  orphans_ = conn;
}

void Ring::forget(UringConn* conn) {
  if (conn->prev_orphan_) conn->prev_orphan_->next_orphan_ = conn->next_orphan_;
  if (conn->next_orphan_) conn->next_orphan_->prev_orphan_ = conn->prev_orphan_;
  if (orphans_ == conn) orphans_ = conn->next_orphan_;
}

void Ring::sweep_orphans(CoarseClock::time_point now, bool all) {
  for (UringConn* c = orphans_; c != nullptr; c = c->next_orphan_) {
    if (!c->cancelled_ && (all || c->orphan_deadline_ <= now)) c->cancel_all();
  }
}

void Ring::close() {
  if (dead_) return;
  io_uring_submit(&ring_);
  io_uring_queue_exit(&ring_);
  dead_ = true;
}

std::string Ring::take_buffer() {
  if (buffers_.empty()) return {};
  std::string b = std::move(buffers_.back());
  buffers_.pop_back();
  return b;
}

void Ring::give_back(std::string buffer) {
  // A few, of ordinary size: one unusually large response does not stay resident.
  if (buffers_.size() < 64 && buffer.capacity() <= 64 * 1024) {
    buffer.clear();
    buffers_.push_back(std::move(buffer));
  }
}

// ---- UringConn

UringConn::UringConn(Ring& ring, int fd) : ring_(ring), fd_(fd) {
  read_op_.complete = &on_read;
  read_op_.conn = this;
  send_op_.complete = &on_send;
  send_op_.conn = this;
  ++ring_.connections_;
}

UringConn::~UringConn() {
  --ring_.connections_;
  if (!out_.empty() || out_.capacity() > 0) ring_.give_back(std::move(out_));
}

error_code UringConn::failed() const {
  if (send_errno_ != 0) return errno_code(send_errno_);
  return {};
}

void UringConn::submit_read(void* data, std::size_t size) {
  // A response sent this turn and the read of the next request: the send's completion only
  // gives its buffer back, and waking the loop for it would cost a system call per request.
  if (sending_ == Sending::queued && send_turn_ == ring_.turn_) ring_.expect_quietly();
  io_uring_sqe* s = ring_.sqe();
  io_uring_prep_recv(s, fd_, data, size, 0);
  io_uring_sqe_set_data(s, &read_op_);
  reading_ = true;
  ++in_kernel_;
}

void UringConn::submit_queued_send() {
  io_uring_sqe* s = ring_.sqe();
  // MSG_WAITALL: the kernel sends the rest itself when the socket takes only part (a stream
  // socket, Linux 6.0), so a short count is a failure and a close linked after it is safe.
  io_uring_prep_send(s, fd_, out_.data() + out_sent_, out_.size() - out_sent_,
                     MSG_NOSIGNAL | MSG_WAITALL);
  io_uring_sqe_set_data(s, &send_op_);
  sending_ = Sending::queued;
  send_sqe_ = s;
  send_turn_ = ring_.turn_;
  ++in_kernel_;
}

void UringConn::submit_write() {
  msg_ = {};
  msg_.msg_iov = iov_;
  msg_.msg_iovlen = static_cast<std::size_t>(iov_count_);
  io_uring_sqe* s = ring_.sqe();
  io_uring_prep_sendmsg(s, fd_, &msg_, MSG_NOSIGNAL);
  io_uring_sqe_set_data(s, &send_op_);
  sending_ = Sending::awaited;
  ++in_kernel_;
}

void UringConn::on_read(UringOp* op, int result, unsigned) {
  UringConn* c = static_cast<Op*>(op)->conn;
  c->reading_ = false;
  --c->in_kernel_;
  error_code ec;
  std::size_t n = 0;
  if (result > 0) {
    n = static_cast<std::size_t>(result);
  } else if (result == 0) {
    ec = asio::error::eof;
  } else {
    ec = errno_code(-result);
  }
  if (!c->read_handler_.empty()) {
    c->read_handler_.complete(ec, n);  // may end the session, and with it `c`
    return;
  }
  c->settle();
}

void UringConn::on_send(UringOp* op, int result, unsigned) {
  UringConn* c = static_cast<Op*>(op)->conn;
  --c->in_kernel_;
  if (c->sending_ == Sending::awaited) {
    c->sending_ = Sending::none;
    error_code ec;
    if (result < 0) {
      ec = errno_code(-result);
      if (c->send_errno_ == 0) c->send_errno_ = -result;
    }
    if (!c->write_handler_.empty()) {
      c->write_handler_.complete(ec, result > 0 ? static_cast<std::size_t>(result) : 0);
      return;
    }
    c->settle();
    return;
  }
  // The queued send: the rest of it, if the socket took only part.
  if (result >= 0) {
    c->out_sent_ += static_cast<std::size_t>(result);
    // Short only when interrupted (MSG_WAITALL): the rest is lost, and the connection with it.
    if (c->out_sent_ < c->out_.size() && c->send_errno_ == 0) c->send_errno_ = EPIPE;
  } else if (c->send_errno_ == 0) {
    c->send_errno_ = -result;
  }
  c->sending_ = Sending::none;
  c->ring_.give_back(std::move(c->out_));
  c->out_ = {};
  if (c->shutdown_after_send_ && c->send_errno_ == 0 && !c->closed_) {
    c->shutdown_after_send_ = false;
    ::shutdown(c->fd_, SHUT_WR);
  }
  if (!c->write_handler_.empty()) {
    // An awaited write waited for this one.
    if (c->send_errno_ != 0 || c->closed_) {
      c->write_handler_.complete(c->closed_ ? asio::error::operation_aborted : c->failed(), 0);
      return;
    }
    c->submit_write();
    return;
  }
  c->settle();
}

std::size_t UringConn::read_now(void* data, std::size_t size, error_code& ec) {
  const ssize_t n = ::recv(fd_, data, size, MSG_DONTWAIT);
  if (n > 0) {
    ec = {};
    return static_cast<std::size_t>(n);
  }
  ec = n == 0            ? error_code(asio::error::eof)
       : errno == EAGAIN ? error_code(asio::error::would_block)
                         : errno_code(errno);
  return 0;
}

void UringConn::cancel_read() {
  if (reading_) ring_.cancel(read_op_);
}

void UringConn::close() {
  if (closed_) return;
  closed_ = true;
  if (reading_) ring_.cancel(read_op_);
  // An awaited write is cancelled; so is a queued send that one waits behind. A queued send
  // alone finishes (within the grace release() gives it).
  if (sending_ == Sending::awaited || (sending_ == Sending::queued && !write_handler_.empty()))
    ring_.cancel(send_op_);
}

void UringConn::shutdown_send(error_code& ec) {
  ec = {};
  if (closed_) {
    ec = asio::error::bad_descriptor;
    return;
  }
  if (sending_ != Sending::none) {
    shutdown_after_send_ = true;  // after the bytes before it
    return;
  }
  if (::shutdown(fd_, SHUT_WR) != 0) ec = errno_code(errno);
}

void UringConn::cancel_all() {
  cancelled_ = true;
  if (reading_) ring_.cancel(read_op_);
  if (sending_ != Sending::none) ring_.cancel(send_op_);
}

void UringConn::release(CoarseClock::duration grace) {
  close();
  if (ring_.dead_) {
    ::close(fd_);
    delete this;
    return;
  }
  if (in_kernel_ == 0) {
    close_descriptor();
    delete this;
    return;
  }
  if (sending_ == Sending::queued && in_kernel_ == 1 && send_sqe_ == ring_.last_sqe_ &&
      send_sqe_ != nullptr) {
    // The response is the last thing the connection does (Connection: close), and its send is
    // still in this turn's queue: the close follows it in the same submission, hard-linked so
    // that it runs once the send has ended either way.
    send_sqe_->flags |= IOSQE_IO_HARDLINK;
    close_descriptor();
    ring_.expect_quietly();
  }
  ring_.adopt(this, grace);
}

void UringConn::settle() {
  if (!orphaned_ || in_kernel_ > 0) return;
  ring_.forget(this);
  if (!close_queued_) close_descriptor();
  delete this;
}

void UringConn::close_descriptor() {
  close_queued_ = true;
  // Queued after every operation on the descriptor, submitted with them: the number is
  // released only when the kernel has taken the close, never while one could still use it.
  io_uring_sqe* s = ring_.sqe();
  io_uring_prep_close(s, fd_);
  io_uring_sqe_set_data64(s, 0);
  s->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

}  // namespace printerfacts
