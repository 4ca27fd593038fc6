// The access log: one line per request on stdout, batched per worker thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace printerfacts {

/// The one place log lines leave the process. Whole batches of whole lines are written with one
/// write(2) under a mutex, so lines from different threads never interleave, and the lock is
/// taken once per batch, not once per request.
class AccessLogSink {
 public:
  explicit AccessLogSink(int fd) : fd_(fd) {}
  void write(std::string_view lines);

 private:
  std::mutex mutex_;
  int fd_;
};

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
};

/// One worker's log buffer. Lines are appended as requests finish and flushed by a handler
/// posted to the worker's event loop: it runs after the requests that are ready now, so a busy
/// worker writes many lines at once and an idle one writes at once. Not thread-safe.
class AccessLog {
 public:
  /// How lines look.
  struct Style {
    bool json = false;       ///< one JSON object per line instead of text
    bool timestamps = true;  ///< off when stdout is the journal, which stamps lines itself
  };

  AccessLog(AccessLogSink& sink, boost::asio::any_io_executor executor, Style style)
      : sink_(sink), executor_(std::move(executor)), style_(style) {}
  ~AccessLog() { flush(); }

  void record(const AccessRecord& r);
  void flush();

 private:
  AccessLogSink& sink_;
  boost::asio::any_io_executor executor_;
  Style style_;
  std::string buffer_;
  std::time_t cached_second_ = -1;
  char time_prefix_[24] = {};  // "2026-11-28T04:15:17."
};

/// Appends `text` as the inside of a JSON string: quotes, backslashes and control bytes escaped,
/// bytes of invalid UTF-8 as \u00XX so the line always parses.
void append_json_escaped(std::string& out, std::string_view text);

}  // namespace printerfacts
