// The types every connection's code is written in: its executor, sockets and coroutines.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace printerfacts {

/// Every connection runs on its worker's io_context, named by its concrete executor type: the
/// type-erased any_io_executor would cost a virtual dispatch and executor copies per operation.
using Executor = boost::asio::io_context::executor_type;
/// The connection socket of `Protocol`, on that executor.
template <class Protocol>
using Socket = typename Protocol::socket::template rebind_executor<Executor>::other;
/// A coroutine on that executor.
template <class T = void>
using Task = boost::asio::awaitable<T, Executor>;
/// The completion token of every co_await: errors come back as values, never as exceptions.
inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable_t<Executor>());

}  // namespace printerfacts
