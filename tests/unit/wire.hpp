// A response as a client receives it: the head rendered by Response::render_head, the very
// function a connection sends it with, then the body, parsed back by Beast's response parser.
// Tests read headers and bodies from here, never from the router's data structures.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <string>

#include "routing/response.hpp"

namespace printerfacts::testing {

inline constexpr std::string_view kTestDate = "Tue, 01 Dec 2026 00:00:00 GMT";

struct Wire {
  std::string bytes;                          ///< everything sent: head, then body
  http::response<http::string_body> message;  ///< as Beast's parser reads the bytes
};

/// The bytes `r` goes on the wire as, and what a client parses from them. A file's body is read
/// from its descriptor without moving its offset, so the response can still be sent.
inline Wire on_the_wire(const Response& r) {
  Wire w;
  r.render_head(kTestDate, "", w.bytes);
  const auto body = r.body_in_memory();
  w.bytes.append(static_cast<const char*>(body.data()), body.size());
  if (auto* file = std::get_if<FileResponse>(&const_cast<Response&>(r).message);
      file && !r.head_only) {
    const int fd = file->body().file().native_handle();  // file() is not const in Beast
    char chunk[4096];
    off_t at = 0;
    for (ssize_t n; (n = ::pread(fd, chunk, sizeof chunk, at)) > 0; at += n) {
      w.bytes.append(chunk, static_cast<std::size_t>(n));
    }
  }
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  parser.skip(r.head_only);  // a response to HEAD: a Content-Length, no body
  boost::beast::error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(w.bytes), ec);
  EXPECT_FALSE(ec) << ec.message() << " in:\n" << w.bytes;
  EXPECT_TRUE(parser.is_done()) << "incomplete response:\n" << w.bytes;
  EXPECT_EQ(used, w.bytes.size()) << "bytes after the response:\n" << w.bytes;
  w.message = parser.release();
  return w;
}

}  // namespace printerfacts::testing
