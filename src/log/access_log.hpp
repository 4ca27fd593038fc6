// The access log: one line per request on stdout, batched per worker thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "log/access_log_format.hpp"
#include "log/log_stream.hpp"

namespace printerfacts {

/// What one request leaves in the log.
struct AccessRecord {
  std::string_view peer;
  std::string_view client;      ///< what a trusted proxy forwarded; empty: none, or not trusted
  std::string_view request_id;  ///< taken from X-Request-Id, or generated
  std::string_view trace_id;    ///< of a valid traceparent; JSON only
  std::string_view method;
  std::string_view target;
  unsigned version = 11;
  unsigned status = 0;
  std::uint64_t bytes = 0;
  std::chrono::nanoseconds duration{};
  // Filled only for the formats that show them (AccessLog::Style::wants_fields): the request's
  // Host, User-Agent and Referer, as sent; escaped when written, and cut to
  // kMaxLoggedFieldBytes (a client picks their length, the log's line must stay bounded).
  std::string_view host;
  std::string_view user_agent;
  std::string_view referer;
};

/// The most of a Host, User-Agent or Referer value a line holds. The head's own limit
/// (--max-header-size) already bounds them; this keeps one request's line short whatever that
/// limit is. Longer values are cut, and the cut is not marked.
inline constexpr std::size_t kMaxLoggedFieldBytes = 512;

/// One worker's log buffer. Lines are appended as requests finish and handed to the stream by a
/// handler posted to the worker's event loop: it runs after the requests that are ready now, so
/// a busy worker hands many lines over at once and an idle one at once. The worker never
/// writes: the stream's own thread does (log_stream.hpp). Not thread-safe.
class AccessLog {
 public:
  /// The form of a line (log/access_log_format.hpp).
  using Format = AccessLogFormat;
  struct Style {
    Format format = Format::text;
    bool timestamps = true;  ///< off when stdout is the journal, which stamps lines itself
    /// Whether the format shows Host, User-Agent and Referer (looked up only then). Every
    /// format but the default text line: that one is kept to what it showed, so that its
    /// per-request cost does not grow (bench/budgets.json holds it).
    bool wants_fields() const { return format != Format::text; }
  };

  AccessLog(LogStream& sink, boost::asio::any_io_executor executor, Style style)
      : sink_(sink), executor_(std::move(executor)), style_(style) {}
  ~AccessLog() { flush(); }

  void record(const AccessRecord& r);
  void flush();
  const Style& style() const { return style_; }

 private:
  LogStream& sink_;
  boost::asio::any_io_executor executor_;
  Style style_;
  std::string buffer_;
  std::time_t cached_second_ = -1;
  char time_prefix_[24] = {};  // "2026-11-28T04:15:17."
  char clf_time_[32] = {};     // "[28/Nov/2026:04:15:17 +0000]"
};

/// Appends `text` as the inside of a JSON string: quotes, backslashes and control bytes escaped,
/// bytes of invalid UTF-8 as \u00XX so the line always parses.
void append_json_escaped(std::string& out, std::string_view text);

}  // namespace printerfacts
