#include "routing/router.hpp"

#include <array>
#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>
#include <initializer_list>
#include <span>

#include "app/html.hpp"
#include "util/iterator_range.hpp"

namespace printerfacts {
namespace {

constexpr std::string_view kAllow = "GET, HEAD";

// The kinds of response, each declared once: the header lines all its responses carry.
constexpr HeaderLine kEvery[] = {{"Server", "printerfacts"}, {"X-Content-Type-Options", "nosniff"}};
constexpr HeaderLine kNoStore[] = {{"Cache-Control", "no-store"}};
constexpr HeaderLine kTextType[] = {{"Content-Type", "text/plain; charset=utf-8"}};
// Pages load nothing but our own stylesheet and icon; nothing may frame them or run script.
constexpr HeaderLine kPageType[] = {
    {"Content-Type", "text/html; charset=utf-8"},
    {"Content-Security-Policy",
     "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
     "form-action 'none'; frame-ancestors 'none'"}};
constexpr HeaderLine kMetricsType[] = {
    {"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}};
// Assets change only with a new release or a new --static-dir; revalidation is cheap (304).
// Their Content-Type and ETag are fields: they differ from file to file.
constexpr HeaderLine kAssetCaching[] = {{"Cache-Control", "public, max-age=3600"}};

constexpr auto kTextLines = render_lines<kEvery, kTextType, kNoStore>();
constexpr auto kPageLines = render_lines<kEvery, kPageType, kNoStore>();
constexpr auto kMetricsLines = render_lines<kEvery, kMetricsType, kNoStore>();
constexpr auto kAssetLines = render_lines<kEvery, kAssetCaching>();
constexpr auto kBareLines = render_lines<kEvery>();

constexpr ResponseKind kText{kTextLines.view()};        ///< /fact, /healthz
constexpr ResponseKind kPage{kPageLines.view()};        ///< /, 404, 405 and every error
constexpr ResponseKind kMetrics{kMetricsLines.view()};  ///< /metrics
constexpr ResponseKind kAsset{kAssetLines.view()};      ///< /static/...
constexpr ResponseKind kBare{kBareLines.view()};        ///< OPTIONS *: no content

// Whether the connection stays open after this request (RFC 9112 §9.3): "close" closes it, in
// HTTP/1.0 only "keep-alive" keeps it open. Every Connection line counts (RFC 9110 §7.6.1: the
// lines are one list; Beast's message::keep_alive() reads the first only, so "keep-alive" on
// one line and "close" on the next would have kept it open). Without a Connection field, the
// usual case, the version decides.
bool wants_keep_alive(const Request& req) {
  bool close = false, keep_alive = false;
  for (const auto& f : req) {
    if (f.name() != http::field::connection) continue;
    for (const auto option : http::token_list{f.value()}) {
      close = close || boost::beast::iequals(option, "close");
      keep_alive = keep_alive || boost::beast::iequals(option, "keep-alive");
    }
  }
  if (close) return false;
  return req.version() >= 11 || keep_alive;
}

// What a response takes from the request it answers.
struct Answering {
  unsigned version = 11;  ///< the request's: 10 or 11, the only versions the parser accepts
  bool keep_alive = false;
  bool head_only = false;            ///< a HEAD request: the head only, with the length of the body
  ArenaAllocator<char> allocator{};  ///< the request's: its arena, while a connection serves it

  static Answering request(const Request& req) {
    return {req.version(), wants_keep_alive(req), req.method() == http::verb::head,
            req.get_allocator()};
  }
  // A refused request: the connection closes after the answer, whose framing the client
  // cannot be trusted to have understood otherwise.
  static Answering refused(const Request& req) {
    Answering to = request(req);
    to.keep_alive = false;
    return to;
  }
};

// The one constructor of responses: a `kind` of response (its constant header lines), `status`,
// what it takes from its request, the route, the body and the fields that vary. The message is
// built where it will live, inside the Response (its fields are not moved on the way).
template <class Message, class Body>
Response respond(const ResponseKind& kind, http::status status, const Answering& to, Route route,
                 Body&& body,
                 std::initializer_list<std::pair<http::field, std::string_view>> fields = {}) {
  Response r{decltype(Response::message)(std::in_place_type<Message>, std::piecewise_construct,
                                         std::make_tuple(), std::make_tuple(to.allocator)),
             to.head_only, route, kind};
  auto& m = std::get<Message>(r.message);
  m.result(status);
  m.version(to.version);
  // A fresh message is persistent in HTTP/1.1 and not in 1.0 already; saying so again would
  // only cost a search of its Connection field.
  if (to.keep_alive != (to.version >= 11)) m.keep_alive(to.keep_alive);
  m.body() = std::forward<Body>(body);
  for (const auto& [name, value] : fields) m.set(name, value);
  return r;
}

Response text(std::string_view text, const Request& req, Route route,
              http::status status = http::status::ok) {
  return respond<SpanResponse>(kText, status, Answering::request(req), route,
                               std::span<const char>(text.data(), text.size()));
}

Response page(http::status status, std::string body, const Request& req, Route route) {
  return respond<StringResponse>(kPage, status, Answering::request(req), route, std::move(body));
}

Response error_page(http::status status, const Answering& to) {
  return respond<StringResponse>(
      kPage, status, to, Route::bad_request,
      render_error(static_cast<unsigned>(status), http::obsolete_reason(status)));
}

Response method_not_allowed(const Request& req, Route route) {
  return respond<StringResponse>(kPage, http::status::method_not_allowed, Answering::request(req),
                                 route, render_error(405, "Method Not Allowed"),
                                 {{http::field::allow, kAllow}});
}

Response static_response(StaticFile file, const Request& req) {
  const Answering to = Answering::request(req);
  const std::initializer_list<std::pair<http::field, std::string_view>> fields = {
      {http::field::content_type, file.content_type}, {http::field::etag, file.etag}};
  const auto inm = req.find(http::field::if_none_match);
  if (inm != req.end() && etag_matches(inm->value(), file.etag)) {
    return respond<SpanResponse>(kAsset, http::status::not_modified, to, Route::static_file,
                                 std::span<const char>(), fields);
  }
  if (!file.file.is_open()) {
    return respond<SpanResponse>(kAsset, http::status::ok, to, Route::static_file,
                                 std::span<const char>(file.embedded.data(), file.embedded.size()),
                                 fields);
  }
  http::file_body::value_type body;
  boost::beast::error_code ec;
  body.reset(std::move(file.file), ec);
  if (ec) return error_page(http::status::internal_server_error, Answering::refused(req));
  return respond<FileResponse>(kAsset, http::status::ok, to, Route::static_file, std::move(body),
                               fields);
}

// A table of the bytes that are letters, digits or one of `extra`.
constexpr std::array<bool, 256> alnum_and(std::string_view extra) {
  std::array<bool, 256> t{};
  for (unsigned char c = 'a'; c <= 'z'; ++c) t[c] = true;
  for (unsigned char c = 'A'; c <= 'Z'; ++c) t[c] = true;
  for (unsigned char c = '0'; c <= '9'; ++c) t[c] = true;
  for (const char c : extra) t[static_cast<unsigned char>(c)] = true;
  return t;
}

// One or more digits.
bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Whether `host` is a valid Host field value: uri-host [ ":" port ] (RFC 9112 §3.2, RFC 3986
// §3.2.2), or empty. A host is an IP-literal in brackets, or a reg-name: unreserved
// characters, sub-delims and percent-encodings, which covers IPv4 addresses and names alike
// (no DNS syntax is imposed: "0.0.0.0=5000" and "a_b" are valid reg-names). Userinfo ("u@x")
// is not allowed in a Host (RFC 9110 §7.2). Boost.URL's authority parser is not used for the
// whole value: version 1.81 refuses reg-names that begin like an IPv4 address.
bool valid_host(std::string_view host) {
  static constexpr auto kRegName = alnum_and("-._~!$&'()*+,;=");
  const auto is_hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  };
  std::string_view name = host;
  std::string_view port;
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    const auto literal = boost::urls::parse_authority(host.substr(0, close + 1));
    if (!literal || literal->host_type() == boost::urls::host_type::name) return false;
    port = host.substr(close + 1);
    if (!port.empty() && port.front() != ':') return false;
    name = {};
  } else if (const auto colon = host.rfind(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port = host.substr(colon);
  }
  if (!port.empty()) port.remove_prefix(1);  // the ':'
  if (!port.empty() && !all_digits(port)) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (kRegName[c]) continue;
    if (c != '%' || i + 2 >= name.size() || !is_hex(name[i + 1]) || !is_hex(name[i + 2]))
      return false;
    i += 2;
  }
  return true;
}

bool is_token(std::string_view s) {
  static constexpr auto kTchar = alnum_and("!#$%&'*+-.^_`|~");
  if (s.empty()) return false;
  for (const char c : s) {
    if (!kTchar[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

// Whether the request's transfer codings frame it as chunked: all its Transfer-Encoding lines
// together are one list (RFC 9110 §5.3), whose last element must be "chunked" and whose other
// elements must not be (RFC 9112 §6.1: chunked is applied once, last). Framing is where a
// leniency becomes request smuggling, so every element must be a coding name (a token,
// parameters allowed except on chunked, which has none). Empty elements (`,chunked`,
// `chunked,`, ` , chunked`) are skipped: RFC 9110 §5.6.1 says a recipient MUST accept and
// ignore them, and Beast, which frames the body, skips them too (its token_list), so the list
// read here is the one the body is read by.
bool chunked_last(const Request& req) {
  bool chunked = false;  // whether the last element so far is chunked
  for (const auto& f : req) {
    if (f.name() != http::field::transfer_encoding) continue;
    std::string_view rest = f.value();
    for (;;) {
      const auto comma = rest.find(',');
      const std::string_view element = trim_ows(rest.substr(0, comma));
      if (!element.empty()) {
        const auto semicolon = element.find(';');
        const std::string_view name = trim_ows(element.substr(0, semicolon));
        if (!is_token(name) || chunked) return false;  // not a name, or after chunked
        chunked = boost::beast::iequals(name, "chunked");
        if (chunked && semicolon != std::string_view::npos) return false;
      }
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
  }
  return chunked;
}

}  // namespace

std::optional<http::status> check_request(const Request& req) {
  // Two limits are not checked here because no request that breaks them reaches a router:
  // Beast's parser refuses every version but HTTP/1.0 and 1.1 (bad_version: 400, "HTTP/2.0" and
  // the h2 preface included), and RequestParser refuses more than kMaxHeaderFields fields (431).

  // One pass over the fields: the few that decide how the request is framed and addressed (a
  // tree lookup per field would cost more than the whole pass).
  std::size_t hosts = 0, lengths = 0, codings = 0;
  std::string_view host, length;
  const Fields::value_type* expect = nullptr;
  for (const auto& f : req) {
    switch (f.name()) {
      case http::field::host:
        ++hosts, host = f.value();
        break;
      case http::field::content_length:
        ++lengths, length = f.value();
        break;
      case http::field::transfer_encoding:
        ++codings;
        break;
      case http::field::expect:
        if (expect == nullptr) expect = &f;
        break;
      default:
        break;
    }
  }

  // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without exactly one Host, or
  // with an invalid one. It must be an authority without user information.
  if (hosts > 1 || (hosts == 0 && req.version() >= 11)) return http::status::bad_request;
  if (hosts == 1 && !valid_host(host)) return http::status::bad_request;

  // Framing. A message with both Content-Length and Transfer-Encoding is a classic smuggling
  // vector (RFC 9112 §6.3 lets a server reject it; a proxy behind us may have framed it by the
  // other header). Beast parses a Transfer-Encoding that does not end in "chunked" as having no
  // body, which would leave the real body to be read as the next request: RFC 9112 §6.3 requires
  // 400 and closing. Transfer-Encoding is not defined for HTTP/1.0 either.
  if (codings > 0 && lengths > 0) return http::status::bad_request;
  if (codings > 0 && (req.version() < 11 || !chunked_last(req))) return http::status::bad_request;
  // One Content-Length, one number. RFC 9110 §8.6 lets a recipient accept "5, 5" or two equal
  // lines as 5, and Beast does; a proxy in front may have framed such a message differently,
  // so it is refused, as nginx and llhttp refuse it.
  if (lengths > 1 || (lengths == 1 && !all_digits(length))) return http::status::bad_request;

  // CONNECT asks for a tunnel (RFC 9110 §9.3.6), which this server does not open: 501, the
  // answer for a method it does not implement (§15.6.2). Its target is the authority-form,
  // which no route has, and the bytes after its head would be tunnel data, not HTTP: the
  // connection closes (Router::error always closes).
  if (req.method() == http::verb::connect) return http::status::not_implemented;

  // The only expectation defined is 100-continue (RFC 9110 §10.1.1); anything else is 417.
  if (expect != nullptr && req.version() >= 11 &&
      !boost::beast::iequals(expect->value(), "100-continue")) {
    return http::status::expectation_failed;
  }
  return std::nullopt;
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  const auto weak_stripped = [](std::string_view t) {
    if (t.substr(0, 2) == "W/") t.remove_prefix(2);
    return t;
  };
  const std::string_view ours = weak_stripped(etag);
  while (!if_none_match.empty()) {
    const auto comma = if_none_match.find(',');
    const std::string_view tag = trim_ows(if_none_match.substr(0, comma));
    if_none_match.remove_prefix(comma == std::string_view::npos ? if_none_match.size() : comma + 1);
    if (tag == "*" || (!tag.empty() && weak_stripped(tag) == ours)) return true;
  }
  return false;
}

Response Router::error(http::status status, unsigned version) {
  return error_page(status, Answering{version == 10 ? 10u : 11u, false, false, {}});
}

Response Router::route(const Request& req, Random& rng) const {
  if (const auto refused = check_request(req)) return error_page(*refused, Answering::refused(req));
  const auto bad_request = [&req] {
    return error_page(http::status::bad_request, Answering::refused(req));
  };

  const std::string_view target = req.target();
  // The asterisk-form names the server itself and is only defined for OPTIONS (RFC 9112 §3.2.4).
  if (target == "*") {
    if (req.method() != http::verb::options) return bad_request();
    return respond<SpanResponse>(kBare, http::status::ok, Answering::request(req), Route::not_found,
                                 std::span<const char>(), {{http::field::allow, kAllow}});
  }
  // Origin-form ("/path?query") is what clients send to a server; absolute-form
  // ("http://host/path") must be accepted too (RFC 9112 §3.2.2). Anything else (authority-form
  // is for CONNECT, which no proxy here serves) is a bad request.
  // The routes clients ask for most, spelled exactly, need no URL parsing.
  const bool readable = req.method() == http::verb::get || req.method() == http::verb::head;
  if (serve_app_ && readable && target == "/fact")
    return text(content_.facts.pick(rng).text, req, Route::fact);

  auto url = boost::urls::parse_origin_form(target);
  if (!url) {
    url = boost::urls::parse_absolute_uri(target);
    // "x:443" parses as a URI with scheme "x"; an absolute-form target names a host.
    if (url && !url->has_authority()) return bad_request();
  }
  if (!url) return bad_request();

  const auto segments = url->segments();  // percent-decoded, one per path segment
  const std::string path = url->path();   // percent-decoded
  if (path == "/healthz") {
    if (!readable) return method_not_allowed(req, Route::healthz);
    // Lame duck: still serving, but asking load balancers and probes to stop sending.
    if (health_ != nullptr && health_->leaving()) {
      return text("shutting down\n", req, Route::healthz, http::status::service_unavailable);
    }
    if (health_ != nullptr && health_->socket_lost()) {
      return text("socket file replaced\n", req, Route::healthz, http::status::service_unavailable);
    }
    return text("ok\n", req, Route::healthz);
  }
  if (path == "/metrics" && metrics_ != nullptr) {
    if (!readable) return method_not_allowed(req, Route::metrics);
    return respond<StringResponse>(kMetrics, http::status::ok, Answering::request(req),
                                   Route::metrics, metrics_->render());
  }
  if (serve_app_) {
    if (path == "/fact") {
      if (!readable) return method_not_allowed(req, Route::fact);
      return text(content_.facts.pick(rng).text, req, Route::fact);
    }
    if (path == "/" || path.empty()) {
      if (!readable) return method_not_allowed(req, Route::index);
      return page(http::status::ok, render_index(content_.facts.pick(rng).html), req, Route::index);
    }
    if (!segments.empty() && *segments.begin() == "static" && segments.size() > 1) {
      if (!readable) return method_not_allowed(req, Route::static_file);
      const IteratorRange rest{std::next(segments.begin()), segments.end()};
      if (const auto relative = safe_relative_path(rest)) {
        if (auto file = content_.static_files.open(*relative)) {
          return static_response(std::move(*file), req);
        }
      }
    }
  }
  return page(http::status::not_found, render_not_found(path), req, Route::not_found);
}

}  // namespace printerfacts
