// What printerfacts knows that Asio 1.81's epoll reactor does not, told to it so that it spares
// system calls: that a short read drained a socket (note_drained), that an accepted socket has
// no duplicate (note_not_duplicated), that it is non-blocking already (note_non_blocking), and how
// the workers' listening sockets should wake them (exclusive_listener, accepted_one).
//
// A stream socket whose read returned less than was asked has an empty receive queue (epoll(7):
// "the read ... returns less than requested"); with the edge-triggered registration Asio uses,
// the next data makes a new event. Asio 1.81's epoll reactor only learns that a socket is
// drained from a read of zero bytes (reactive_socket_recv_op: done_and_exhausted when
// bytes_transferred == 0); otherwise every async read starts with a speculative recv() that
// fails with EAGAIN: one system call, ~1.3 us here, on every keep-alive request. nginx treats a
// short read as "drained" (its `ready` flag), and Asio itself does for writes.
//
// The flag it keeps for this (descriptor_state::try_speculative_) is private, so it is reached
// through explicit template instantiation, where access is not checked ([temp.spec.general]/6);
// the layout is checked against the one Boost version this was written for. Setting it is what
// the reactor does itself after an exhausted read, under the same lock; an event on the socket
// sets it again. If data arrived between our read and this call, its event is still pending in
// epoll and sets the flag back before the read op is queued or performs the queued op.
#pragma once

#include <sys/epoll.h>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/version.hpp>
#include <cstdint>
#include <type_traits>

static_assert(
    BOOST_VERSION == 108100,
    "connections/reactor_hints.hpp reaches into Asio's epoll reactor as Boost 1.81 has it: "
    "check descriptor_state against this Boost before changing this line");
static_assert(std::is_same_v<boost::asio::detail::reactor, boost::asio::detail::epoll_reactor>,
              "the epoll reactor is the one this is for");

namespace printerfacts {
namespace drained_detail {

using boost::asio::detail::epoll_reactor;
using DescriptorState = epoll_reactor::descriptor_state;
using DescriptorMutex = boost::asio::detail::conditionally_enabled_mutex;

template <class Tag, typename Tag::type Member>
struct Expose {
  friend typename Tag::type member(Tag) { return Member; }
};
struct TrySpeculative {
  using type = bool (DescriptorState::*)[epoll_reactor::max_ops];
  friend type member(TrySpeculative);
};
struct Mutex {
  using type = DescriptorMutex DescriptorState::*;
  friend type member(Mutex);
};
struct RegisteredEvents {
  using type = std::uint32_t DescriptorState::*;
  friend type member(RegisteredEvents);
};
struct EpollFd {
  using type = int epoll_reactor::*;
  friend type member(EpollFd);
};
template struct Expose<TrySpeculative, &DescriptorState::try_speculative_>;
template struct Expose<Mutex, &DescriptorState::mutex_>;
template struct Expose<RegisteredEvents, &DescriptorState::registered_events_>;
template struct Expose<EpollFd, &epoll_reactor::epoll_fd_>;

// basic_socket_acceptor::impl_ is private: named the same way, for the two acceptors we use.
template <class Protocol>
using AcceptorOf = typename Protocol::acceptor::template rebind_executor<
    boost::asio::io_context::executor_type>::other;
template <class Protocol>
using AcceptorImplType =
    boost::asio::detail::io_object_impl<boost::asio::detail::reactive_socket_service<Protocol>,
                                        boost::asio::io_context::executor_type>;
struct UnixAcceptorImpl {
  using type = AcceptorImplType<boost::asio::local::stream_protocol>
      AcceptorOf<boost::asio::local::stream_protocol>::*;
  friend type member(UnixAcceptorImpl);
};
struct TcpAcceptorImpl {
  using type = AcceptorImplType<boost::asio::ip::tcp> AcceptorOf<boost::asio::ip::tcp>::*;
  friend type member(TcpAcceptorImpl);
};
template struct Expose<UnixAcceptorImpl, &AcceptorOf<boost::asio::local::stream_protocol>::impl_>;
template struct Expose<TcpAcceptorImpl, &AcceptorOf<boost::asio::ip::tcp>::impl_>;

inline DescriptorState* state_of(AcceptorOf<boost::asio::local::stream_protocol>& a) {
  return (a.*member(UnixAcceptorImpl{})).get_implementation().reactor_data_;
}
inline DescriptorState* state_of(AcceptorOf<boost::asio::ip::tcp>& a) {
  return (a.*member(TcpAcceptorImpl{})).get_implementation().reactor_data_;
}

// basic_socket::impl_ is protected: named through a class derived from the socket.
template <class Socket>
struct SocketImpl : Socket {
  static auto& of(Socket& s) { return (s.*(&SocketImpl::impl_)).get_implementation(); }
};

}  // namespace drained_detail

/// Registers a worker's duplicate of a listening socket level-triggered and exclusive
/// (EPOLLEXCLUSIVE, Linux 4.5), in place of Asio's edge-triggered registration: a new
/// connection wakes one idle worker, not every one (each woken one then failed accept() with
/// EAGAIN: 1.2 per connection with 4 threads), and a connection still queued is reported again,
/// so accepted_one() may stop the accept after each one from being tried before epoll says so.
/// nginx registers its listeners the same way. False (Asio's edge-triggered registration in
/// place, as before) when the kernel refuses it.
///
/// `watched` false takes the listener out of the worker's epoll set altogether (a level-
/// triggered listener with connections queued would otherwise wake the worker at once, again
/// and again, while it pauses after accept() failed for want of descriptors); true puts it
/// back.
template <class Acceptor>
bool exclusive_listener(Acceptor& acceptor, boost::asio::io_context& io, bool watched = true) {
  using namespace drained_detail;
  DescriptorState* d = state_of(acceptor);
  if (d == nullptr) return false;
  const int epoll_fd = boost::asio::use_service<epoll_reactor>(io).*member(EpollFd{});
  const int fd = acceptor.native_handle();
  DescriptorMutex::scoped_lock lock(d->*member(Mutex{}));
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLEXCLUSIVE;
  ev.data.ptr = d;
  const bool registered_exclusive = (d->*member(RegisteredEvents{}) & EPOLLEXCLUSIVE) != 0;
  if (!watched) return ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr) == 0;
  // Asio's own registration is replaced; ours, taken out by watched = false, is added again.
  if (!registered_exclusive && ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr) != 0) return false;
  if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    // Asio's own registration back (epoll_reactor::register_descriptor's events).
    ev.events = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLPRI | EPOLLET;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev);
    d->*member(RegisteredEvents{}) = ev.events;
    return false;
  }
  d->*member(RegisteredEvents{}) = ev.events;
  return true;
}

/// After an accept on a listener made exclusive_listener(): the next accept waits for epoll,
/// which reports the listener again while connections are queued (level-triggered), instead of
/// trying accept() at once, which fails whenever nothing else is queued.
template <class Acceptor>
void accepted_one(Acceptor& acceptor) {
  using namespace drained_detail;
  DescriptorState* d = state_of(acceptor);
  if (d == nullptr) return;
  DescriptorMutex::scoped_lock lock(d->*member(Mutex{}));
  (d->*member(TrySpeculative{}))[epoll_reactor::read_op] = false;
}

/// After a read on `socket` (a stream socket) returned fewer bytes than its buffer held: the
/// next async read waits for the socket's next epoll event instead of calling recv() first.
template <class Protocol, class Executor>
void note_drained(boost::asio::basic_stream_socket<Protocol, Executor>& socket) {
  using namespace drained_detail;
  using Socket = boost::asio::basic_stream_socket<Protocol, Executor>;
  DescriptorState* d = SocketImpl<Socket>::of(socket).reactor_data_;
  if (d == nullptr) return;
  DescriptorMutex::scoped_lock lock(d->*member(Mutex{}));
  (d->*member(TrySpeculative{}))[epoll_reactor::read_op] = false;
}

/// Any other stream (a test's): nothing to tell.
template <class Stream>
void note_drained(Stream&) {}

/// For a socket this process accepted and never duplicated: closing it needs no EPOLL_CTL_DEL
/// (closing the last descriptor of a file removes it from every epoll set, epoll(7)). Asio
/// marks every socket made from a descriptor "possibly duplicated" (socket_ops::possible_dup,
/// as an accepted one is), and then deregisters it by hand before close().
template <class Protocol, class Executor>
void note_not_duplicated(boost::asio::basic_stream_socket<Protocol, Executor>& socket) {
  using Socket = boost::asio::basic_stream_socket<Protocol, Executor>;
  drained_detail::SocketImpl<Socket>::of(socket).state_ &=
      static_cast<boost::asio::detail::socket_ops::state_type>(
          ~boost::asio::detail::socket_ops::possible_dup);
}

template <class Stream>
void note_not_duplicated(Stream&) {}

/// For a socket whose descriptor is already non-blocking (accept4 with SOCK_NONBLOCK): puts it
/// in Asio's non-blocking mode, as `non_blocking(true)` would, without that call's
/// ioctl(FIONBIO) (one system call on every new connection).
template <class Protocol, class Executor>
void note_non_blocking(boost::asio::basic_stream_socket<Protocol, Executor>& socket) {
  using Socket = boost::asio::basic_stream_socket<Protocol, Executor>;
  drained_detail::SocketImpl<Socket>::of(socket).state_ |=
      boost::asio::detail::socket_ops::non_blocking;
}

}  // namespace printerfacts
