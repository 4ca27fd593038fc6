#include "log/diagnostics.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
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

}  // namespace

void setup_diagnostics(bool json, const std::string& level) {
  auto logger = spdlog::get("printerfacts");
  if (!logger) logger = spdlog::stderr_logger_mt("printerfacts");
  const bool journal = stream_is_journal(STDERR_FILENO);
  std::string pattern;
  if (json) {
    pattern = journal ? R"({"level":"%l","message":"%*"})"
                      : R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","message":"%*"})";
  } else {
    pattern = journal ? "%l: %v" : "%Y-%m-%dT%H:%M:%S.%eZ %l %v";
  }
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<JsonMessage>('*').set_pattern(pattern);
  logger->set_formatter(std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(logger);
}

void set_log_level(const std::string& level) {
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace printerfacts
