// Two things a connection knows that Asio 1.81's epoll reactor does not, told to it so that it
// spares a system call each: that a short read drained the socket (note_drained), and that an
// accepted socket has no duplicate (note_not_duplicated).
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

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/detail/epoll_reactor.hpp>
#include <boost/version.hpp>
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
template struct Expose<TrySpeculative, &DescriptorState::try_speculative_>;
template struct Expose<Mutex, &DescriptorState::mutex_>;

// basic_socket::impl_ is protected: named through a class derived from the socket.
template <class Socket>
struct SocketImpl : Socket {
  static auto& of(Socket& s) { return (s.*(&SocketImpl::impl_)).get_implementation(); }
};

}  // namespace drained_detail

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

}  // namespace printerfacts
