#include "log/access_log.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <cstdint>
#include <ctime>

#include "util/line_writer.hpp"

namespace printerfacts {

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
  const std::size_t worst = 256 + sizeof time_prefix_ +
                            6 * (r.peer.size() + r.client.size() + r.request_id.size() +
                                 r.trace_id.size() + r.method.size() + r.target.size());
  const std::size_t start = buffer_.size();
  buffer_.resize(start + worst);
  LineWriter w(buffer_.data() + start, buffer_.data() + buffer_.size());
  if (style_.json) {
    // {"time":"...","peer":"unix:pid=1,uid=0,gid=0","client":"192.0.2.7","request_id":"...",
    //  "trace_id":"...","method":"GET","target":"/fact","version":"1.1","status":200,
    //  "bytes":85,"duration_ms":0.042}  (client and trace_id only when known)
    w << '{';
    if (style_.timestamps) {
      w << "\"time\":\"" << time_prefix_;
      w.digits3(millis) << "Z\",";
    }
    w << "\"peer\":\"";
    w.json_escaped(r.peer) << '"';
    if (!r.client.empty()) w << ",\"client\":\"" << r.client << '"';
    if (!r.request_id.empty()) w << ",\"request_id\":\"" << r.request_id << '"';
    if (!r.trace_id.empty()) w << ",\"trace_id\":\"" << r.trace_id << '"';
    w << ",\"method\":\"";
    w.json_escaped(r.method) << "\",\"target\":\"";
    w.json_escaped(r.target) << "\",\"version\":\"" << std::string_view(version, 3)
                             << "\",\"status\":";
    w.number(r.status) << ",\"bytes\":";
    w.number(r.bytes) << ",\"duration_ms\":";
    w.thousandths(us) << "}\n";
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
