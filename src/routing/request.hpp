// The request as routing sees it: its head, with the fields routing reads, and the length of
// the body it came with. No route takes a body, so none is kept.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/optional/optional.hpp>
#include <cstdint>
#include <string_view>

#include "util/arena.hpp"

namespace printerfacts {

namespace http = boost::beast::http;

/// Header fields allocated from the request's arena while a connection serves it (see
/// util/arena.hpp), from the heap otherwise.
using Fields = http::basic_fields<ArenaAllocator<char>>;

/// A body that is read and dropped: its value is the number of bytes it had. The parser still
/// frames it (Content-Length or chunked) and enforces --max-body-size, but a connection holds
/// none of it, so what a client sends as a body never costs memory beyond the read buffer.
struct DiscardedBody {
  using value_type = std::uint64_t;

  static std::uint64_t size(value_type n) { return n; }

  class reader {
   public:
    template <bool isRequest, class Fields_>
    reader(http::header<isRequest, Fields_>&, value_type& received) : received_(received) {}

    void init(const boost::optional<std::uint64_t>&, boost::beast::error_code& ec) {
      received_ = 0;
      ec = {};
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      const std::size_t n = boost::asio::buffer_size(buffers);
      received_ += n;
      ec = {};
      return n;
    }

    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& received_;
  };
};

using Request = http::request<DiscardedBody, Fields>;

/// `s` without the optional whitespace (spaces and tabs, RFC 9110 §5.6.3) around it: how a
/// field value's list elements and parameters are read.
inline std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace printerfacts
