// A connected socket on a worker's io_uring, with the interface of Asio's stream socket that the
// session uses (connections/session.hpp): the same session code runs on either event loop.
//
// What differs from the epoll socket, and why:
// - write_some() does not write: it copies what fits into a send buffer of the worker's and
//   queues one send, which the loop submits with everything else at the end of its turn. The
//   fast path of a response (session::send_now) therefore costs no system call. It reports the
//   bytes as written; a send that fails later fails the connection's next write, and the
//   access log counts the response as sent (a peer that vanished then gets no more). While a
//   queued send is in flight a further write_some() takes nothing (as a full socket would), and
//   the session awaits async_write_some(), which waits for it: one send at a time per
//   connection, so bytes can never overtake each other.
// - close() lets a queued send finish (within --send-timeout, Ring::adopt) and then closes the
//   descriptor with an asynchronous close; the kernel holds the descriptor until then, so its
//   number cannot be reused under an operation still referring to it.
// - Reads wait in the kernel: there is no failed speculative read to save.
#pragma once

#include <sys/socket.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "connections/executor.hpp"
#include "connections/uring.hpp"

namespace printerfacts {

/// A completion handler of signature void(error_code, std::size_t), kept in place in `Size`
/// bytes: no allocation per operation (the coroutine's handler is a few pointers; async_write's
/// wraps it with its buffers). Every connection holds two, idle or not: they are no larger
/// than the handlers the session gives them (a static_assert says when one outgrows its slot).
template <std::size_t Size>
class HandlerSlot {
 public:
  HandlerSlot() = default;
  HandlerSlot(const HandlerSlot&) = delete;
  HandlerSlot& operator=(const HandlerSlot&) = delete;
  ~HandlerSlot() { reset(); }

  template <class Handler>
  void emplace(Handler&& handler) {
    using H = std::decay_t<Handler>;
    static_assert(sizeof(H) <= kSize && alignof(H) <= alignof(std::max_align_t),
                  "a handler this large needs a larger HandlerSlot");
    reset();
    new (storage_) H(std::forward<Handler>(handler));
    invoke_ = [](void* p, boost::system::error_code ec, std::size_t n) {
      H h(std::move(*static_cast<H*>(p)));
      static_cast<H*>(p)->~H();
      std::move(h)(ec, n);
    };
    destroy_ = [](void* p) { static_cast<H*>(p)->~H(); };
  }

  bool empty() const { return invoke_ == nullptr; }

  /// Calls the handler (emptying the slot first: it may start the next operation).
  void complete(boost::system::error_code ec, std::size_t n) {
    auto* invoke = invoke_;
    invoke_ = nullptr;
    destroy_ = nullptr;
    invoke(storage_, ec, n);
  }

 private:
  void reset() {
    if (destroy_) destroy_(storage_);
    invoke_ = nullptr;
    destroy_ = nullptr;
  }

  static constexpr std::size_t kSize = Size;
  alignas(std::max_align_t) unsigned char storage_[kSize];
  void (*invoke_)(void*, boost::system::error_code, std::size_t) = nullptr;
  void (*destroy_)(void*) = nullptr;
};

/// The state of one connection on the ring, owned by its UringSocket until the session ends,
/// then by the ring until the kernel is done with it.
class UringConn {
 public:
  UringConn(Ring& ring, int fd);
  UringConn(const UringConn&) = delete;
  UringConn& operator=(const UringConn&) = delete;
  ~UringConn();

  int fd() const { return fd_; }
  bool is_open() const { return !closed_; }

  /// Receives into [data, data + size); `handler` gets the count, eof at the end of stream.
  template <class Handler>
  void start_read(void* data, std::size_t size, Handler&& handler) {
    read_handler_.emplace(std::forward<Handler>(handler));
    submit_read(data, size);
  }

  /// Queues `buffers` for sending (see the file's comment); returns how much was taken.
  template <class ConstBufferSequence>
  std::size_t queue_send(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
    ec = failed();
    if (ec || sending_ != Sending::none) return 0;
    const std::size_t total = boost::asio::buffer_size(buffers);
    if (total == 0) return 0;
    out_ = ring_.take_buffer();
    out_.resize(total);
    boost::asio::buffer_copy(boost::asio::buffer(out_), buffers);
    out_sent_ = 0;
    submit_queued_send();
    return total;
  }

  /// Sends from `buffers` (which outlive the operation), after any queued send.
  template <class ConstBufferSequence, class Handler>
  void start_write(const ConstBufferSequence& buffers, Handler&& handler) {
    write_handler_.emplace(std::forward<Handler>(handler));
    iov_count_ = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && iov_count_ < kMaxIov; ++it) {
      const boost::asio::const_buffer b(*it);
      if (b.size() == 0) continue;
      iov_[iov_count_++] = {const_cast<void*>(b.data()), b.size()};
    }
    if (sending_ == Sending::none) submit_write();
    // else: started when the queued send completes
  }

  /// A non-blocking receive now (shutdown's look at what has arrived).
  std::size_t read_now(void* data, std::size_t size, boost::system::error_code& ec);

  /// Cancels a pending read (the session is woken to see that it should close).
  void cancel_read();
  /// The session is done with the socket: pending reads and awaited writes are cancelled, a
  /// queued send may finish, and the descriptor is closed once nothing refers to it.
  void close();
  /// Half-closes the sending side, after the queued send if one is in flight.
  void shutdown_send(boost::system::error_code& ec);

  /// The session has ended: frees itself now, or hands itself to the ring until the kernel
  /// has finished (within `grace`).
  void release(CoarseClock::duration grace);
  /// Cancels everything the kernel still does for this connection.
  void cancel_all();

 private:
  friend class Ring;
  enum class Sending { none, queued, awaited };
  static constexpr int kMaxIov = 8;

  struct Op : UringOp {
    UringConn* conn = nullptr;
  };

  boost::system::error_code failed() const;
  void submit_read(void* data, std::size_t size);
  void submit_queued_send();
  void submit_write();
  static void on_read(UringOp* op, int result, unsigned flags);
  static void on_send(UringOp* op, int result, unsigned flags);
  /// One operation of the kernel's has ended: the last one frees an orphan.
  void settle();
  void close_descriptor();

  Ring& ring_;
  int fd_;
  Op read_op_;
  Op send_op_;
  HandlerSlot<32> read_handler_;    ///< the coroutine's own handler
  HandlerSlot<128> write_handler_;  ///< async_write's, around the coroutine's
  iovec iov_[kMaxIov]{};
  int iov_count_ = 0;
  msghdr msg_{};
  std::string out_;  ///< a queued send's bytes (a buffer of the ring's)
  std::size_t out_sent_ = 0;
  Sending sending_ = Sending::none;
  bool reading_ = false;
  int send_errno_ = 0;  ///< the first failed send's error: every later write fails with it
  int in_kernel_ = 0;   ///< operations submitted and not yet completed for good
  bool closed_ = false;
  bool shutdown_after_send_ = false;
  io_uring_sqe* send_sqe_ = nullptr;  ///< the queued send's entry (valid while unsubmitted)
  std::uint64_t send_turn_ = 0;       ///< the loop turn that queued it
  bool close_queued_ = false;
  bool cancelled_ = false;
  bool orphaned_ = false;
  CoarseClock::time_point orphan_deadline_{};
  UringConn* prev_orphan_ = nullptr;
  UringConn* next_orphan_ = nullptr;
};

/// The stream the session uses on the io_uring backend. Move-only; its executor is the
/// worker's io_context, and every operation completes there.
class UringSocket {
 public:
  using executor_type = Executor;

  UringSocket(Ring& ring, Executor executor, int fd, CoarseClock::duration send_grace)
      : executor_(executor), conn_(new UringConn(ring, fd)), send_grace_(send_grace) {}
  UringSocket(UringSocket&& other) noexcept
      : executor_(other.executor_),
        conn_(std::exchange(other.conn_, nullptr)),
        send_grace_(other.send_grace_) {}
  UringSocket& operator=(UringSocket&&) = delete;
  UringSocket(const UringSocket&) = delete;
  ~UringSocket() {
    if (conn_) conn_->release(send_grace_);
  }

  executor_type get_executor() const { return executor_; }
  int native_handle() const { return conn_->fd(); }
  bool is_open() const { return conn_->is_open(); }
  void non_blocking(bool, boost::system::error_code& ec) { ec = {}; }
  bool non_blocking() const { return true; }

  template <class MutableBufferSequence, class Token>
  auto async_read_some(const MutableBufferSequence& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const MutableBufferSequence& b) {
          const boost::asio::mutable_buffer first = *boost::asio::buffer_sequence_begin(b);
          if (!conn_->is_open()) {
            return post_result(std::move(handler), boost::asio::error::bad_descriptor);
          }
          conn_->start_read(first.data(), first.size(), std::move(handler));
        },
        token, buffers);
  }

  template <class ConstBufferSequence, class Token>
  auto async_write_some(const ConstBufferSequence& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& b) {
          if (!conn_->is_open()) {
            return post_result(std::move(handler), boost::asio::error::bad_descriptor);
          }
          if (boost::asio::buffer_size(b) == 0) return post_result(std::move(handler), {});
          conn_->start_write(b, std::move(handler));
        },
        token, buffers);
  }

  template <class ConstBufferSequence>
  std::size_t write_some(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
    if (!conn_->is_open()) {
      ec = boost::asio::error::bad_descriptor;
      return 0;
    }
    return conn_->queue_send(buffers, ec);
  }

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    const boost::asio::mutable_buffer first = *boost::asio::buffer_sequence_begin(buffers);
    return conn_->read_now(first.data(), first.size(), ec);
  }

  void shutdown(boost::asio::socket_base::shutdown_type, boost::system::error_code& ec) {
    conn_->shutdown_send(ec);
  }
  void cancel(boost::system::error_code& ec) {
    ec = {};
    conn_->cancel_read();
  }
  void close(boost::system::error_code& ec) {
    ec = {};
    conn_->close();
  }

 private:
  // An operation that cannot start completes through the io_context, never inside its own
  // initiation (the coroutine that started it has not finished suspending).
  template <class Handler>
  void post_result(Handler handler, boost::system::error_code ec) {
    boost::asio::post(executor_, [h = std::move(handler), ec]() mutable { std::move(h)(ec, 0); });
  }

  Executor executor_;
  UringConn* conn_;
  CoarseClock::duration send_grace_;
};

}  // namespace printerfacts
