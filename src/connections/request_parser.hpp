// The parser a connection reads each request with: Beast's request parser, with the request's
// fields in the request's arena, only the fields routing reads kept, the body dropped, and
// obs-fold refused in the head and the trailers (Beast 1.81 would unfold it).
#pragma once

#include <boost/beast/http.hpp>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <tuple>

#include "connections/request_identity.hpp"
#include "routing/router.hpp"
#include "util/arena.hpp"

namespace printerfacts {

/// The most header fields (trailer fields included) a request may carry, Envoy's default: more
/// are refused with 431 while parsing.
inline constexpr std::size_t kMaxHeaderFields = 100;

/// True when `unparsed`, what a chunked body's parser left in the buffer (a chunk-size line,
/// after the CRLF that ends the previous chunk's data), holds the whole line, and the line ends
/// inside a quoted chunk-extension value. Beast looks for the closing quote beyond the line's
/// end, in everything buffered, so it would ask for more until the read buffer is full; a
/// quoted-string holds no CR or LF (RFC 9112 §7.1.1), so the line is refused as soon as it is
/// complete.
inline bool chunk_line_ends_in_quotes(std::string_view unparsed) {
  if (unparsed.substr(0, 2) == "\r\n") unparsed.remove_prefix(2);
  const auto eol = unparsed.find("\r\n");
  if (eol == std::string_view::npos) return false;  // not a whole line yet
  bool quoted = false;
  for (std::size_t i = 0; i < eol; ++i) {
    if (!quoted) {
      quoted = unparsed[i] == '"';
    } else if (unparsed[i] == '\\') {
      ++i;  // a quoted-pair: the next byte is taken as it is
    } else if (unparsed[i] == '"') {
      quoted = false;
    }
  }
  return quoted;
}

/// True when a line of `head` after its first begins with a space or a tab: an obs-fold
/// continuation (RFC 9112 §5.2), or whitespace between the request line and the first field
/// (§2.2). Both are refused; see RequestParser::put_head.
inline bool has_continuation_line(std::string_view head) {
  const char* p = head.data();
  const char* const end = p + head.size();
  while ((p = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)))) &&
         ++p < end) {
    if (*p == ' ' || *p == '\t') return true;
  }
  return false;
}

class RequestParser final : public http::request_parser<DiscardedBody, ArenaAllocator<char>> {
 public:
  /// Fields are allocated from `arena`, which must outlive the parser and its request.
  explicit RequestParser(Arena& arena)
      : http::request_parser<DiscardedBody, ArenaAllocator<char>>(
            std::piecewise_construct, std::make_tuple(),
            std::make_tuple(ArenaAllocator<char>(&arena))) {}

  /// Whether the head had a field request_identity reads (identity_field): most requests sent
  /// straight to the socket have none, and their identity is then only a generated ID.
  bool has_identity_fields() const { return has_identity_fields_; }

  /// Parses as much of a request head as `bytes` (what the connection has buffered) holds, and
  /// returns how many bytes it used: Beast takes whole lines, and the whole head once its
  /// empty line is there. need_more asks for more bytes (call again with the rest and what
  /// arrived since); a head that outgrows the header limit is header_limit.
  std::size_t put_head(std::string_view bytes, boost::beast::error_code& ec) {
    const std::size_t used = put(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    // obs-fold is refused in every field, with 400, as RFC 9112 §5.2 allows. Beast unfolds it
    // and then reads the framing fields from the unfolded value in ways that disagree with the
    // references: `Transfer-Encoding: chunked` followed by a continuation line ` abc` was
    // framed as chunked, though its final coding is `abc` (a request smuggling path). No
    // client has been allowed to send obs-fold since RFC 7230 (2014), so refusing it costs
    // nothing real, and it leaves no field whose meaning depends on how it was folded. The
    // lines are checked once Beast has taken them, before anything acts on the request (the
    // first line of a later piece is a continuation too when it begins with whitespace).
    const std::string_view taken = bytes.substr(0, used);
    if (!taken.empty() && (has_continuation_line(taken) ||
                           (head_taken_ > 0 && (taken[0] == ' ' || taken[0] == '\t')))) {
      ec = http::error::bad_obs_fold;
    }
    head_taken_ += used;
    // A complete head of a request with a body: Beast wants the body next, which is not an
    // error here.
    if (ec == http::error::need_more && is_header_done()) ec = {};
    return used;
  }

  /// Keeps User-Agent and Referer too, for an access log format that shows them (all but
  /// text: AccessLog::Style::wants_fields); otherwise they are only counted, like every field
  /// nothing reads.
  void keep_log_fields(bool keep) { log_fields_ = keep; }

 private:
  // Beast has checked the field's name and value by now and acted on the framing fields
  // (Content-Length, Transfer-Encoding, Connection, Upgrade). Storing a field costs a copy and
  // a tree insertion; routing reads six kinds and the connection five (identity_field), so the
  // others (User-Agent, Accept, cookies) are only counted.
  void on_field_impl(http::field name, boost::beast::string_view name_string,
                     boost::beast::string_view value, boost::beast::error_code& ec) override {
    // A bound on the number of fields, as Envoy (100) and h2o do: many tiny fields are cheap to
    // send and costly to process. Answered 431, like a head over the size limit. Trailer
    // fields count too.
    if (++fields_ > kMaxHeaderFields) {
      ec = http::error::header_limit;
      return;
    }
    // Trailer fields (after a chunked body) are validated by Beast and then dropped: RFC 9110
    // §6.5.1 forbids merging them into the header section, and a trailer named Host or
    // Transfer-Encoding must not change how the request is addressed or framed.
    if (is_header_done()) return;
    if (reads_field(name)) {
      get().insert(name, name_string, value);
    } else if (identity_field(name, name_string)) {
      get().insert(name, name_string, value);
      has_identity_fields_ = true;
    } else if (log_fields_ && (name == http::field::user_agent || name == http::field::referer)) {
      get().insert(name, name_string, value);
    }
  }

  // Called for every chunk-size line. For the last chunk (size 0) it is called just before
  // Beast parses the trailer section, which then lies in the input right after `extensions`
  // (from the CRLF that ends the last-chunk line) up to the first empty line: Beast has found
  // that empty line in the input before it calls this. Beast would unfold an obs-fold in a
  // trailer field; it is refused there as in the head (put_head), so no field anywhere in a
  // request is read in a folded form.
  // A quoted chunk-extension value may hold no CR or LF (RFC 9112 §7.1.1: qdtext excludes
  // them); Beast's quoted-string accepts any byte, so a bare LF inside quotes would pass.
  void on_chunk_header_impl(std::uint64_t size, boost::beast::string_view extensions,
                            boost::beast::error_code& ec) override {
    if (extensions.find_first_of("\r\n") != boost::beast::string_view::npos) {
      ec = http::error::bad_chunk_extension;
    } else if (size == 0 &&
               trailers_have_continuation_line(extensions.data() + extensions.size())) {
      ec = http::error::bad_obs_fold;
    }
  }

  // `p` points at the CRLF that ends the last-chunk line; the section ends at the first empty
  // line, which is known to be there.
  static bool trailers_have_continuation_line(const char* p) {
    for (;;) {
      p += 2;                                          // past a CRLF: at the start of a line
      if (p[0] == '\r' && p[1] == '\n') return false;  // the empty line: the end
      if (p[0] == ' ' || p[0] == '\t') return true;
      while (p[0] != '\r' || p[1] != '\n') ++p;
    }
  }

  std::size_t fields_ = 0;
  bool has_identity_fields_ = false;
  bool log_fields_ = false;
  std::size_t head_taken_ = 0;  ///< bytes of the head put_head has had parsed so far
};

}  // namespace printerfacts
