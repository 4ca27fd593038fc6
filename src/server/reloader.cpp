#include "server/reloader.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "config/cli.hpp"
#include "config/settings.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {

Reloaded reload_site(const Options& running, const Options& reread, const SiteFixtures& fixtures) {
  const ResolvedIds ids = validate(reread);
  Reloaded r;
  r.site = Site::load(reread.site, ids.site, fixtures);
  r.restart_only = restart_only_changes(running, reread);
  for (const auto& name : r.restart_only) {
    spdlog::warn("--{} changed; the new value takes effect at the next restart", name);
  }
  r.summary = fmt::format(
      "{} facts, static files from {}, log level {}", r.site->content.facts.size(),
      reread.site.static_dir ? *reread.site.static_dir : "the binary", reread.site.log_level);
  r.log_level = reread.site.log_level;
  return r;
}

Reloader command_line_reloader(int argc, const char* const* argv, const Options& running,
                               const SiteFixtures& fixtures) {
  return [argc, argv, &running, fixtures] {
    const CommandLine again =
        parse_command_line(argc, argv, [](const char* name) { return std::getenv(name); });
    if (!again.options) throw StartupError(again.error, again.exit_code);
    return reload_site(running, *again.options, fixtures);
  };
}

}  // namespace printerfacts
