// The parser a connection reads each request with: Beast's request parser, with the request's
// fields in the request's arena, and only the fields routing reads kept.
#pragma once

#include <cstddef>
#include <tuple>

#include <boost/beast/http.hpp>

#include "routing/router.hpp"
#include "util/arena.hpp"

namespace printerfacts {

class RequestParser final : public http::request_parser<http::string_body, ArenaAllocator<char>> {
 public:
  /// Fields are allocated from `arena`, which must outlive the parser and its request.
  explicit RequestParser(Arena& arena)
      : http::request_parser<http::string_body, ArenaAllocator<char>>(
            std::piecewise_construct, std::make_tuple(),
            std::make_tuple(ArenaAllocator<char>(&arena))) {}

 private:
  // Beast has checked the field's name and value by now and acted on the framing fields
  // (Content-Length, Transfer-Encoding, Connection, Upgrade). Storing a field costs a copy and
  // a tree insertion; routing reads six kinds, so the others (User-Agent, Accept, cookies, the
  // proxy's X-Forwarded-*) are only counted.
  void on_field_impl(http::field name, boost::beast::string_view name_string,
                     boost::beast::string_view value, boost::beast::error_code& ec) override {
    // A bound on the number of fields, as Envoy (100) and h2o do: many tiny fields are cheap to
    // send and costly to process. Answered 431, like a head over the size limit.
    if (++fields_ > kMaxHeaderFields) {
      ec = http::error::header_limit;
      return;
    }
    if (reads_field(name)) get().insert(name, name_string, value);
  }

  std::size_t fields_ = 0;
};

}  // namespace printerfacts
