// What a request says about itself beyond what routing reads: the client a trusted proxy names
// (--trust-forwarded, --client-header), its request ID, and the trace it belongs to. Learned by
// the connection after a request is read, then logged and (the ID) echoed on the response.
#pragma once

#include <array>
#include <boost/beast/core/string.hpp>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "app/random.hpp"
#include "config/trusted_proxies.hpp"
#include "routing/request.hpp"

namespace printerfacts {

/// Short text held in place: a request's ID, its client's address, its trace ID. No allocation.
template <std::size_t N>
class InlineText {
 public:
  std::string_view view() const { return {text_.data(), size_}; }
  bool empty() const { return size_ == 0; }
  void assign(std::string_view s) {
    size_ = s.size() < N ? s.size() : N;
    for (std::size_t i = 0; i < size_; ++i) text_[i] = s[i];
  }
  char* data() { return text_.data(); }
  void resize(std::size_t n) { size_ = n < N ? n : N; }

 private:
  std::array<char, N> text_;  // not zeroed: only the first size_ characters are ever read
  std::size_t size_ = 0;
};

/// The most characters an accepted X-Request-Id may have.
inline constexpr std::size_t kMaxRequestIdLength = 64;

/// Whether `id` may be taken as a request's ID: 1 to 64 characters of [A-Za-z0-9._-]. It is
/// echoed and logged, and grants nothing, so it is taken from any peer; anything else (spaces,
/// quotes, control bytes, a megabyte) is replaced by a generated ID, never echoed.
bool valid_request_id(std::string_view id);

/// The length of a generated request ID.
inline constexpr std::size_t kGeneratedIdLength = 32;

/// 128 bits from `rng` as 32 lowercase hex digits, like nginx's $request_id, written to `out`.
/// Unique enough to correlate log lines, not unpredictable: it is no secret and no token.
void generate_request_id(Random& rng, char* out);

/// A request's ID, held as the header line the response carries ("X-Request-Id: ID\r\n"), so
/// that the head takes it in one copy.
class RequestIdLine {
 public:
  /// `id` must be valid_request_id().
  void take(std::string_view id) {
    std::memcpy(text_.data() + kPrefix.size(), id.data(), id.size());
    finish(id.size());
  }
  void generate(Random& rng) {
    generate_request_id(rng, text_.data() + kPrefix.size());
    finish(kGeneratedIdLength);
  }
  bool empty() const { return size_ == 0; }
  std::string_view id() const {
    return empty() ? std::string_view()
                   : std::string_view(text_.data() + kPrefix.size(), size_ - kPrefix.size() - 2);
  }
  std::string_view line() const { return {text_.data(), size_}; }

 private:
  static constexpr std::string_view kPrefix = "X-Request-Id: ";
  void finish(std::size_t id_size) {
    std::memcpy(text_.data(), kPrefix.data(), kPrefix.size());
    std::memcpy(text_.data() + kPrefix.size() + id_size, "\r\n", 2);
    size_ = kPrefix.size() + id_size + 2;
  }
  std::array<char, kPrefix.size() + kMaxRequestIdLength + 2> text_;  // not zeroed
  std::size_t size_ = 0;
};

/// The trace ID (32 lowercase hex digits) of a valid W3C traceparent value
/// ("00-<trace-id>-<parent-id>-<flags>", trace-context §3.2); empty for anything else.
std::string_view trace_id_of(std::string_view traceparent);

/// The client address `header` names in `req`, validated and normalised (inet_ntop's form) into
/// `out`; false when the header is absent, malformed, or names no IP address (RFC 7239's
/// "unknown" and obfuscated "_identifiers"). X-Forwarded-For: the rightmost entry over all its
/// lines, which the trusted proxy appended; the entries left of it are the client's own claims.
/// X-Real-IP: exactly one line holding one address. Forwarded: the for= of its last element.
bool forwarded_client(const Request& req, ClientHeader header, InlineText<46>& out);

/// Whether the connection stores request header field `f` (named `name`) to learn a request's
/// identity: Forwarded, X-Forwarded-For, X-Real-IP, X-Request-Id, traceparent. Routing never
/// reads them (reads_field); RequestParser keeps them too.
inline constexpr std::string_view kRequestIdField = "X-Request-Id";
inline constexpr std::string_view kTraceparentField = "traceparent";
inline bool identity_field(http::field f, std::string_view name) {
  if (f == http::field::forwarded) return true;
  if (f != http::field::unknown) return false;
  using boost::beast::iequals;
  return iequals(name, client_header_name(ClientHeader::x_forwarded_for)) ||
         iequals(name, client_header_name(ClientHeader::x_real_ip)) ||
         iequals(name, kRequestIdField) || iequals(name, kTraceparentField);
}

/// The identity fields of `req`, found in one pass over its stored fields (usually one or two:
/// a lookup by name per field wanted would cost more).
struct IdentityFields {
  std::string_view request_id;   ///< X-Request-Id as sent (not yet validated); empty if absent
  std::string_view traceparent;  ///< as sent; empty if absent
  bool client_header = false;    ///< whether the --client-header field is there at all
};
IdentityFields scan_identity_fields(const Request& req, ClientHeader header);

}  // namespace printerfacts
