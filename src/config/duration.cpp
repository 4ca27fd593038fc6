#include "config/duration.hpp"

#include <cctype>
#include <charconv>
#include <cmath>

namespace printerfacts {
namespace {

// The number at the front of `text` and the unit after it; false when there is no number.
bool split_number(std::string_view text, double& value, std::string_view& unit) {
  if (text.empty() ||
      !(std::isdigit(static_cast<unsigned char>(text.front())) || text.front() == '.')) {
    return false;
  }
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || !std::isfinite(value) || value < 0) return false;
  unit = text.substr(static_cast<std::size_t>(end - text.data()));
  return true;
}

}  // namespace

std::optional<Duration> parse_duration(std::string_view text) {
  // A bare number is seconds; otherwise one or more number-unit parts, largest first, as
  // systemd and Go write them ("1m30s", "1h5m", "2s500ms").
  double ms = 0;
  double previous_unit = HUGE_VAL;  // each part's unit must be smaller than the one before
  do {
    double value = 0;
    std::string_view unit;
    if (!split_number(text, value, unit)) return std::nullopt;
    std::size_t unit_length = 0;
    while (unit_length < unit.size() &&
           std::isalpha(static_cast<unsigned char>(unit[unit_length]))) {
      ++unit_length;
    }
    const std::string_view name = unit.substr(0, unit_length);
    double scale;
    if (name.empty()) {
      if (!unit.empty() || previous_unit != HUGE_VAL) return std::nullopt;  // "1m30" is unclear
      scale = 1000;
    } else if (name == "ms") {
      scale = 1;
    } else if (name == "s") {
      scale = 1000;
    } else if (name == "m" || name == "min") {
      scale = 60'000;
    } else if (name == "h") {
      scale = 3'600'000;
    } else {
      return std::nullopt;
    }
    if (scale >= previous_unit) return std::nullopt;
    previous_unit = scale;
    ms += value * scale;
    text = unit.substr(unit_length);
  } while (!text.empty());
  if (ms > 86'400'000) return std::nullopt;
  return Duration(static_cast<Duration::rep>(std::llround(ms)));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  double value = 0;
  std::string_view unit;
  if (!split_number(text, value, unit)) return std::nullopt;
  double multiplier;
  if (unit.empty() || unit == "b" || unit == "B") {
    multiplier = 1;
  } else if (unit == "k" || unit == "K" || unit == "KiB") {
    multiplier = 1024;
  } else if (unit == "m" || unit == "M" || unit == "MiB") {
    multiplier = 1024.0 * 1024;
  } else {
    return std::nullopt;
  }
  const double bytes = value * multiplier;
  if (bytes > 1024.0 * 1024 * 1024 || bytes != std::floor(bytes)) return std::nullopt;
  return static_cast<std::uint64_t>(bytes);
}

std::string format_size(std::uint64_t bytes) {
  if (bytes != 0 && bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + "m";
  if (bytes != 0 && bytes % 1024 == 0) return std::to_string(bytes / 1024) + "k";
  return std::to_string(bytes);
}

std::string format_duration(Duration d) {
  const auto ms = d.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace printerfacts
