// Parsing of the human-friendly values flags take: durations ("10s", "250ms") and sizes ("8k").
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace printerfacts {

using Duration = std::chrono::milliseconds;

/// "250ms", "10s", "2m", "1h", parts of them largest first ("1m30s", "1h5m"), or a bare number
/// of seconds ("10", "0.5"). std::nullopt when malformed, negative or over a day.
std::optional<Duration> parse_duration(std::string_view text);

/// "8192", "8k", "1m" (binary multiples, case-insensitive). std::nullopt when malformed or over
/// 1 GiB.
std::optional<std::uint64_t> parse_size(std::string_view text);

/// A duration as the flags accept it back, e.g. "10s" or "250ms".
std::string format_duration(Duration d);

/// A size as the flags accept it back, e.g. "8k", "1m" or "1000".
std::string format_size(std::uint64_t bytes);

}  // namespace printerfacts
