// An accept for the epoll loop that makes the new connection non-blocking in the same system
// call (accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC), as nginx does.
//
// Asio 1.81's accept op calls accept() and leaves the socket blocking; its first asynchronous
// operation then makes it non-blocking with ioctl(FIONBIO): one more system call on every new
// connection (~0.85 us here; a short connection took 9.7 calls against nginx's 7). There is no
// hook for accept's flags, so this is an op of our own queued on the listener's read queue in
// Asio's own reactor (epoll_reactor::start_op, a public member), exactly where Asio queues its
// accept: the listener's registration, cancellation by close() and destruction at shutdown all
// work as for Asio's op. The socket it makes is given to an Asio socket with assign() and marked
// non-blocking (note_non_blocking), so Asio never asks again. Pinned, with reactor_hints.hpp, to
// the Boost version it was written for.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/system/error_code.hpp>
#include <cerrno>
#include <memory>
#include <utility>

#include "connections/executor.hpp"
#include "connections/reactor_hints.hpp"

namespace printerfacts {
namespace accept_detail {

using boost::asio::detail::reactor_op;

/// The queued accept: performed by the reactor when the listener is readable; completes with
/// the new descriptor, or an error (operation_aborted when the listener is closed).
template <class Handler>
class AcceptOp : public reactor_op {
 public:
  AcceptOp(int listener, Handler handler)
      : reactor_op(boost::system::error_code(), &AcceptOp::perform_accept, &AcceptOp::complete),
        listener_(listener),
        handler_(std::move(handler)) {}

 private:
  static status perform_accept(reactor_op* base) {
    auto* op = static_cast<AcceptOp*>(base);
    for (;;) {
      op->accepted_ = ::accept4(op->listener_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (op->accepted_ >= 0) return done;
      // A connection reset while queued (ECONNABORTED, EPROTO) is not an error of ours: on to
      // the next one, as Asio's accept does.
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;
      op->ec_ = boost::system::error_code(errno, boost::system::system_category());
      return done;
    }
  }

  // `owner` is null when the io_context is destroyed with the op still queued.
  static void complete(void* owner, boost::asio::detail::operation* base,
                       const boost::system::error_code&, std::size_t) {
    std::unique_ptr<AcceptOp> op(static_cast<AcceptOp*>(base));
    const int accepted = std::exchange(op->accepted_, -1);
    if (owner == nullptr) {
      if (accepted >= 0) ::close(accepted);
      return;
    }
    Handler handler(std::move(op->handler_));
    const boost::system::error_code ec = op->ec_;
    op.reset();  // freed before the handler runs, which may queue the next accept
    std::move(handler)(ec, accepted);
  }

  int listener_;
  int accepted_ = -1;
  Handler handler_;
};

}  // namespace accept_detail

/// Accepts one connection on `acceptor` (registered with Asio's epoll reactor) into a new
/// non-blocking, close-on-exec descriptor: completes with (error_code, descriptor), the
/// descriptor -1 on error. The caller owns the descriptor.
template <class Acceptor, class Token>
auto async_accept_nonblocking(Acceptor& acceptor, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, int)>(
      [&acceptor](auto handler) {
        using Op = accept_detail::AcceptOp<std::decay_t<decltype(handler)>>;
        auto& reactor = boost::asio::use_service<boost::asio::detail::epoll_reactor>(
            acceptor.get_executor().context());
        // Null once the acceptor is closed: start_op then completes the op with bad_descriptor.
        boost::asio::detail::epoll_reactor::per_descriptor_data state =
            drained_detail::state_of(acceptor);
        auto* op = new Op(acceptor.native_handle(), std::move(handler));
        // The op's accept4() runs at once, speculatively: on a blocking listener with nothing
        // queued it would block the whole worker. Asio makes its listeners non-blocking before
        // its own accept; this does the same, once per listener (later calls find it so).
        boost::system::error_code ec;
        if (!acceptor.non_blocking()) acceptor.non_blocking(true, ec);
        if (ec) {
          op->ec_ = ec;
          reactor.post_immediate_completion(op, true);
          return;
        }
        reactor.start_op(boost::asio::detail::epoll_reactor::read_op, acceptor.native_handle(),
                         state, op, /*is_continuation=*/true, /*allow_speculative=*/true);
      },
      token);
}

}  // namespace printerfacts
