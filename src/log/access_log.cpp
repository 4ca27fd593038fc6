#include "log/access_log.hpp"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstdint>
#include <ctime>

#include "util/line_writer.hpp"

namespace printerfacts {

namespace {

// A request's own field (Host, User-Agent, Referer) as a line holds it: cut to a bound.
std::string_view bounded(std::string_view value) {
  return value.substr(0, kMaxLoggedFieldBytes);
}

// The client's address: the client a trusted proxy named, else a TCP peer's address, else
// empty (a Unix socket peer has none).
std::string_view client_address(const AccessRecord& r) {
  std::string_view host = r.client;
  if (host.empty() && r.peer.substr(0, 4) == "tcp:") {
    host = r.peer.substr(4, r.peer.rfind(':') - 4);
    if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  }
  return host;
}

// The formats other tools read, apart from record(): kept out of line, so that the default
// format's path is compiled as it was (inlined into record(), these cost the text line ~3 %).
[[gnu::noinline]] void write_combined(LineWriter& w, const AccessRecord& r, const char* clf_time,
                                      std::string_view version) {
  // 192.0.2.7 - - [28/Nov/2026:04:15:17 +0000] "GET /fact HTTP/1.1" 200 85 "-" "curl/8.0"
  // The host is client_address(), or "-" (a Unix socket peer has no address: GoAccess then
  // needs --no-ip-validation). Bytes are all bytes sent, headers included (nginx's
  // $bytes_sent). Quotes and control bytes are \xHH.
  const std::string_view host = client_address(r);
  w << (host.empty() ? std::string_view("-") : host) << " - - " << clf_time << " \"";
  w.log_escaped(r.method) << ' ';
  w.log_escaped(r.target) << " HTTP/" << version << "\" ";
  w.number(r.status) << ' ';
  w.number(r.bytes) << " \"";
  if (r.referer.empty()) {
    w << '-';
  } else {
    w.log_escaped(bounded(r.referer));
  }
  w << "\" \"";
  if (r.user_agent.empty()) {
    w << '-';
  } else {
    w.log_escaped(bounded(r.user_agent));
  }
  w << "\"\n";
}

[[gnu::noinline]] void write_logfmt(LineWriter& w, const AccessRecord& r, const char* time_prefix,
                                    unsigned millis, std::string_view version, std::uint64_t us) {
  // time=... peer="unix:pid=1,uid=0,gid=0" client=192.0.2.7 method=GET target=/fact
  //   proto=HTTP/1.1 status=200 bytes=85 duration_ms=0.042 request_id=... host=x
  //   user_agent="curl/8.0" referer=...  (client, trace_id, host, user_agent, referer only
  //   when known). A value with a space, '=', a quote or a control byte is quoted, with JSON's
  //   escapes inside.
  const auto pair = [&w](std::string_view key, std::string_view value) {
    w << key << '=';
    const bool plain = !value.empty() && std::all_of(value.begin(), value.end(), [](char ch) {
      const auto c = static_cast<unsigned char>(ch);
      return c > 0x20 && c < 0x7f && c != '=' && c != '"' && c != '\\';
    });
    if (plain) {
      w << value;
    } else {
      w << '"';
      w.json_escaped(value) << '"';
    }
  };
  if (time_prefix != nullptr) {
    w << "time=" << time_prefix;
    w.digits3(millis) << "Z ";
  }
  pair("peer", r.peer);
  if (!r.client.empty()) pair(" client", r.client);
  pair(" method", r.method);
  pair(" target", r.target);
  w << " proto=HTTP/" << version << " status=";
  w.number(r.status) << " bytes=";
  w.number(r.bytes) << " duration_ms=";
  w.thousandths(us);
  if (!r.request_id.empty()) pair(" request_id", r.request_id);
  if (!r.trace_id.empty()) pair(" trace_id", r.trace_id);
  if (!r.host.empty()) pair(" host", bounded(r.host));
  if (!r.user_agent.empty()) pair(" user_agent", bounded(r.user_agent));
  if (!r.referer.empty()) pair(" referer", bounded(r.referer));
  w << '\n';
}

[[gnu::noinline]] void write_json(LineWriter& w, const AccessRecord& r, const char* time_prefix,
                                  unsigned millis, std::string_view version, std::uint64_t us) {
  // {"time":"...","peer":"unix:pid=1,uid=0,gid=0","client.address":"192.0.2.7",
  //  "request_id":"...","trace_id":"...","http.request.method":"GET","url.path":"/fact",
  //  "url.query":"q=1","network.protocol.version":"1.1","http.response.status_code":200,
  //  "http.response.size":85,"duration_ms":0.042,"server.address":"example.org",
  //  "server.port":8080,"user_agent.original":"curl/8.0",
  //  "http.request.header.referer":["https://example.org/"]}
  // Names from OpenTelemetry's semantic conventions for HTTP where they have one (an
  // attribute's dots are part of its name, as in OTel's flat JSON form); time, peer,
  // request_id, trace_id and duration_ms have none and keep ours. Fields not known are left
  // out: client.address (a Unix peer with no trusted client), url.query, trace_id, and the
  // request's fields. http.response.size counts every byte sent, headers included.
  w << '{';
  if (time_prefix != nullptr) {
    w << "\"time\":\"" << time_prefix;
    w.digits3(millis) << "Z\",";
  }
  w << "\"peer\":\"";
  w.json_escaped(r.peer) << '"';
  if (const std::string_view client = client_address(r); !client.empty())
    w << ",\"client.address\":\"" << client << '"';
  if (!r.request_id.empty()) w << ",\"request_id\":\"" << r.request_id << '"';
  if (!r.trace_id.empty()) w << ",\"trace_id\":\"" << r.trace_id << '"';
  w << ",\"http.request.method\":\"";
  const std::size_t query = r.target.find('?');
  w.json_escaped(r.method) << "\",\"url.path\":\"";
  w.json_escaped(r.target.substr(0, query)) << '"';
  if (query != std::string_view::npos) {
    w << ",\"url.query\":\"";
    w.json_escaped(r.target.substr(query + 1)) << '"';
  }
  w << ",\"network.protocol.version\":\"" << version << "\",\"http.response.status_code\":";
  w.number(r.status) << ",\"http.response.size\":";
  w.number(r.bytes) << ",\"duration_ms\":";
  w.thousandths(us);
  if (!r.host.empty()) {
    // Host is "name", "name:port", "[v6]" or "[v6]:port": the port only after the last ':'
    // that follows any ']'.
    std::string_view name = bounded(r.host);
    std::string_view port;
    const std::size_t colon = name.rfind(':');
    const std::size_t bracket = name.rfind(']');
    if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
      port = name.substr(colon + 1);
      name = name.substr(0, colon);
    }
    if (name.size() > 2 && name.front() == '[' && name.back() == ']')
      name = name.substr(1, name.size() - 2);
    w << ",\"server.address\":\"";
    w.json_escaped(name) << '"';
    const bool numeric =
        !port.empty() && port.size() <= 5 &&
        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (numeric) w << ",\"server.port\":" << port;
  }
  if (!r.user_agent.empty()) {
    w << ",\"user_agent.original\":\"";
    w.json_escaped(bounded(r.user_agent)) << '"';
  }
  if (!r.referer.empty()) {
    // http.request.header.<key> is a list of strings in the conventions.
    w << ",\"http.request.header.referer\":[\"";
    w.json_escaped(bounded(r.referer)) << "\"]";
  }
  w << "}\n";
}

}  // namespace

// Written by hand into reserved memory, not with fmt: this runs on every request, and
// fmt::format_to into a string through a back_inserter cost more instructions than the rest of
// a /fact request.
void AccessLog::record(const AccessRecord& r) {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  if (ts.tv_sec != cached_second_) {
    cached_second_ = ts.tv_sec;
    tm t{};
    ::gmtime_r(&ts.tv_sec, &t);
    std::strftime(time_prefix_, sizeof time_prefix_, "%Y-%m-%dT%H:%M:%S.", &t);
    // The C locale's English month names, as every CLF reader expects (setlocale is never
    // called).
    if (style_.format == Format::combined) {
      std::strftime(clf_time_, sizeof clf_time_, "[%d/%b/%Y:%H:%M:%S +0000]", &t);
    }
  }
  const bool was_empty = buffer_.empty();
  const auto millis = static_cast<unsigned>(ts.tv_nsec / 1000000);
  // Milliseconds with three decimals, from integer microseconds.
  const auto us = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(r.duration).count());
  const char version[3] = {static_cast<char>('0' + r.version / 10), '.',
                           static_cast<char>('0' + r.version % 10)};
  // The longest line these fields can make: fixed text and numbers, plus every escaped byte
  // at its longest.
  const std::size_t worst =
      256 + sizeof time_prefix_ + sizeof clf_time_ +
      6 * (r.peer.size() + r.client.size() + r.request_id.size() + r.trace_id.size() +
           r.method.size() + r.target.size() + bounded(r.host).size() +
           bounded(r.user_agent).size() + bounded(r.referer).size());
  const std::size_t start = buffer_.size();
  buffer_.resize(start + worst);
  LineWriter w(buffer_.data() + start, buffer_.data() + buffer_.size());
  if (style_.format == Format::combined) {
    write_combined(w, r, clf_time_, std::string_view(version, 3));
  } else if (style_.format == Format::logfmt) {
    write_logfmt(w, r, style_.timestamps ? time_prefix_ : nullptr, millis,
                 std::string_view(version, 3), us);
  } else if (style_.format == Format::json) {
    write_json(w, r, style_.timestamps ? time_prefix_ : nullptr, millis,
               std::string_view(version, 3), us);
  } else {
    // 2026-11-28T04:15:17.123Z unix:pid=1,uid=0,gid=0 client=192.0.2.7 "GET /fact HTTP/1.1"
    //   200 85 0.042ms rid=5f0c...  (client= only when known)
    if (style_.timestamps) {
      w << time_prefix_;
      w.digits3(millis) << "Z ";
    }
    w << r.peer;
    if (!r.client.empty()) w << " client=" << r.client;
    w << " \"";
    w.log_escaped(r.method) << ' ';
    w.log_escaped(r.target) << " HTTP/" << std::string_view(version, 3) << "\" ";
    w.number(r.status) << ' ';
    w.number(r.bytes) << ' ';
    w.thousandths(us) << "ms";
    if (!r.request_id.empty()) w << " rid=" << r.request_id;
    w << '\n';
  }
  buffer_.resize(static_cast<std::size_t>(w.end() - buffer_.data()));
  if (buffer_.size() >= 32 * 1024) {
    flush();
  } else if (was_empty) {
    boost::asio::post(executor_, [this] { flush(); });
  }
}

void append_json_escaped(std::string& out, std::string_view text) {
  const std::size_t start = out.size();
  out.resize(start + 6 * text.size());
  LineWriter w(out.data() + start, out.data() + out.size());
  w.json_escaped(text);
  out.resize(static_cast<std::size_t>(w.end() - out.data()));
}

void AccessLog::flush() {
  sink_.submit(buffer_);  // leaves buffer_ empty
}

}  // namespace printerfacts
