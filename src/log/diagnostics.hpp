// Diagnostics (start-up, warnings, shutdown) on stderr, as text or JSON lines.
#pragma once

#include <string>

namespace printerfacts {

/// Installs the process's diagnostic logger on stderr. `json` writes one JSON object per line;
/// `level` is an spdlog level name. When stderr is the journal, lines carry no timestamp.
void setup_diagnostics(bool json, const std::string& level);

/// Changes the least severe level printed (a reload's --log-level); thread-safe.
void set_log_level(const std::string& level);

}  // namespace printerfacts
