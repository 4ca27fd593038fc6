// What SIGHUP does to the configuration: read it again, build the Site its reloadable part
// describes, and say which other settings changed and wait for a restart.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/options.hpp"
#include "connections/site.hpp"

namespace printerfacts {

/// What a reload switches to.
struct Reloaded {
  std::shared_ptr<const Site> site;
  std::string summary;    ///< for the log: "64 facts, static files from ..., log level info"
  std::string log_level;  ///< applied once the reload is logged, at the old level
  /// Settings that differ from the running ones but only a restart applies (--help's order).
  std::vector<std::string> restart_only;
};

/// Builds what a reload switches to, from the configuration read again; throws (a StartupError
/// saying why) to keep the running one.
using Reloader = std::function<Reloaded()>;

/// The reload from `running` to `reread`: the whole of `reread` must be valid (a configuration
/// that could not start is refused now, not at the next restart), the Site is built from its
/// reloadable part (reread.site) and `fixtures` alone, and each restart-only setting that
/// changed is logged as waiting for a restart. Throws StartupError, changing nothing.
Reloaded reload_site(const Options& running, const Options& reread, const SiteFixtures& fixtures);

/// A Reloader that parses the command line (`argc`, `argv`: kept alive by the caller) and so
/// the --config file again, then reload_site().
Reloader command_line_reloader(int argc, const char* const* argv, const Options& running,
                               const SiteFixtures& fixtures);

}  // namespace printerfacts
