// Diagnostics (start-up, warnings, shutdown) on stderr, as text or JSON lines.
#pragma once

#include <string>

namespace printerfacts {

/// Installs the process's diagnostic logger on stderr. `json` writes one JSON object per line;
/// `level` is an spdlog level name. When stderr is the journal, lines carry no timestamp.
void setup_diagnostics(bool json, const std::string& level);

}  // namespace printerfacts
