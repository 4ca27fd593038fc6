// The descriptor limit (RLIMIT_NOFILE) against what --max-connections asks for. systemd and
// login sessions start processes with a soft limit of 1024 (select()'s), far below the default
// --max-connections; a server that does not use select() is meant to raise its soft limit up to
// the hard one itself (systemd.exec(5), LimitNOFILE=).
#pragma once

#include <sys/resource.h>

#include <cstddef>
#include <string>

#include "config/options.hpp"

namespace printerfacts {

/// Descriptors the process may need at once: every connection (the service's and the metrics
/// listeners' reserve), each worker's duplicate of each listener, and a margin for the rest
/// (event loops, timers, signalfd, logs, /proc, a static file being read).
std::size_t descriptors_needed(const Options& options, unsigned threads);

/// What was done about the limit.
struct DescriptorLimit {
  rlim_t soft_before = 0;
  rlim_t soft = 0;  ///< after
  rlim_t hard = 0;
  std::size_t needed = 0;
  /// Empty when `soft` covers `needed`; else what to do, naming the flag and LimitNOFILE=.
  std::string warning;
};

/// The soft limit raised to cover `needed` (never above the hard limit, never lowered).
DescriptorLimit raise_descriptor_limit(std::size_t needed, unsigned max_connections);

}  // namespace printerfacts
