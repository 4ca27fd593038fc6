#include "client/healthcheck.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace printerfacts {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

template <class Stream>
asio::awaitable<void> ask(Stream& stream, const std::string& name,
                          std::chrono::milliseconds timeout, HealthResult& result) {
  http::request<http::empty_body> req{http::verb::get, "/healthz", 11};
  req.set(http::field::host, "localhost");
  req.set(http::field::user_agent, "printerfacts-healthcheck");
  req.keep_alive(false);
  stream.expires_after(timeout);
  if (auto [ec, n] = co_await http::async_write(stream, req, use_tuple); ec) {
    result.detail = name + ": sending the request failed: " + ec.message();
    co_return;
  }
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  if (auto [ec, n] = co_await http::async_read(stream, buffer, res, use_tuple); ec) {
    result.detail = name + ": reading the answer failed: " + ec.message();
    co_return;
  }
  result.healthy = res.result() == http::status::ok;
  result.detail = name + ": " + std::to_string(res.result_int()) + " " + res.body();
  while (!result.detail.empty() && result.detail.back() == '\n') result.detail.pop_back();
}

// Connects with `connect` (an awaitable returning an error message, empty on success), then
// asks for /healthz.
template <class Stream, class Connect>
HealthResult run_check(asio::io_context& io, Stream& stream, const std::string& name,
                       std::chrono::milliseconds timeout, Connect connect) {
  HealthResult result;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        stream.expires_after(timeout);
        if (const std::string error = co_await connect(); !error.empty()) {
          result.detail = name + ": " + error;
          co_return;
        }
        co_await ask(stream, name, timeout, result);
      },
      asio::detached);
  io.run();
  return result;
}

}  // namespace

HealthResult check_health(const ListenAddress& address, std::chrono::milliseconds timeout) {
  asio::io_context io;
  const std::string name = address.to_string();
  if (address.kind == ListenAddress::Kind::unix_socket) {
    beast::basic_stream<asio::local::stream_protocol> stream(io);
    return run_check(io, stream, name, timeout, [&]() -> asio::awaitable<std::string> {
      auto [ec] = co_await stream.async_connect(
          asio::local::stream_protocol::endpoint(address.path), use_tuple);
      co_return ec ? "cannot connect: " + ec.message() : std::string();
    });
  }
  // A server listening on every address is reached on loopback.
  std::string host = address.host;
  if (host == "::") host = "::1";
  if (host == "0.0.0.0") host = "127.0.0.1";
  beast::basic_stream<asio::ip::tcp> stream(io);
  asio::ip::tcp::resolver resolver(io);
  return run_check(io, stream, name, timeout, [&]() -> asio::awaitable<std::string> {
    auto [rec, endpoints] =
        co_await resolver.async_resolve(host, std::to_string(address.port), use_tuple);
    if (rec) co_return "cannot resolve: " + rec.message();
    auto [ec, ep] = co_await stream.async_connect(endpoints, use_tuple);
    co_return ec ? "cannot connect: " + ec.message() : std::string();
  });
}

}  // namespace printerfacts
