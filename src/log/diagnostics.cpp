#include "log/diagnostics.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "log/access_log.hpp"
#include "util/journal.hpp"

namespace printerfacts {
namespace {

// %* in a pattern: the message, escaped for use inside a JSON string.
class JsonMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped;
    append_json_escaped(escaped, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessage>();
  }
};

// %~ in a pattern: the "<N>" prefix that tells the journal a line's priority (sd-daemon(3)),
// so that `journalctl -p err` finds errors; without it every line is priority 6 (info).
class JournalPriority : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    // trace and debug: 7 (debug), info: 6, warn: 4 (warning), error: 3, critical: 2 (crit).
    static constexpr char kPriority[] = {'7', '7', '6', '4', '3', '2', '6'};
    const auto level = static_cast<std::size_t>(msg.level);
    const char prefix[3] = {'<', level < sizeof kPriority ? kPriority[level] : '6', '>'};
    dest.append(prefix, prefix + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JournalPriority>();
  }
};

// Formats each line and hands it to a LogStream. The sink's mutex guards only the formatting
// and the hand-over, never a write.
class StreamSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit StreamSink(std::shared_ptr<LogStream> stream) : stream_(std::move(stream)) {}

 private:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    line_.append(formatted.data(), formatted.size());
    stream_->submit(line_);
  }
  void flush_() override {}

  std::shared_ptr<LogStream> stream_;
  std::string line_;
};

}  // namespace

void setup_diagnostics(std::shared_ptr<LogStream> stream, bool json, const std::string& level) {
  spdlog::drop("printerfacts");
  auto logger = std::make_shared<spdlog::logger>("printerfacts",
                                                 std::make_shared<StreamSink>(std::move(stream)));
  const bool journal = stream_is_journal(STDERR_FILENO);
  std::string pattern;
  // The journal stamps each line itself, and reads its priority from the "<N>" prefix.
  if (json) {
    pattern = journal ? R"(%~{"level":"%l","message":"%*"})"
                      : R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","message":"%*"})";
  } else {
    pattern = journal ? "%~%l: %v" : "%Y-%m-%dT%H:%M:%S.%eZ %l %v";
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<JsonMessage>('*').add_flag<JournalPriority>('~').set_pattern(pattern);
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

void set_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace printerfacts
