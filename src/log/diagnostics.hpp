// Diagnostics (start-up, warnings, shutdown) on stderr, as text or JSON lines.
#pragma once

#include <memory>
#include <string>

#include "log/log_stream.hpp"

namespace printerfacts {

/// Installs the process's diagnostic logger, writing to `stream` (stderr's): a line is handed
/// over and written by the stream's own thread, so logging never waits for the reader.
/// `json` writes one JSON object per line; `level` is an spdlog level name. When stderr is the
/// journal, lines carry no timestamp.
void setup_diagnostics(std::shared_ptr<LogStream> stream, bool json, const std::string& level);

/// Changes the least severe level printed (a reload's --log-level); thread-safe.
void set_log_level(const std::string& level);

}  // namespace printerfacts
