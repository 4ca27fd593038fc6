#include "server/reloader.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "app/random.hpp"
#include "temp_dir.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

namespace http = boost::beast::http;

class FixedMetrics : public MetricsSource {
 public:
  std::string render() const override { return "x 1\n"; }
};

unsigned status_of(const Site& site, bool metrics_listener, const char* target) {
  Random rng(1);
  Request req{http::verb::get, target, 11};
  req.set(http::field::host, "x");
  return site.router(metrics_listener).route(req, rng).status();
}

Options running_options() {
  Options o;
  o.listen.push_back(parse_listen_address("unix:/run/printerfacts/http.sock"));
  o.metrics_listen.push_back(parse_listen_address("unix:/run/printerfacts/metrics.sock"));
  return o;
}

// The bug this unit was made for: --metrics-on-main is restart-only, so a reload that reads it
// turned on must not put /metrics on the proxy-facing socket, and must say it waits.
TEST(ReloadSite, MetricsOnMainChangedWaitsForARestart) {
  const FixedMetrics metrics;
  const Options running = running_options();
  const SiteFixtures fixtures{&metrics, running.metrics_on_main, nullptr};
  Options reread = running;
  reread.metrics_on_main = true;
  const Reloaded r = reload_site(running, reread, fixtures);
  EXPECT_EQ(status_of(*r.site, false, "/metrics"), 404u) << "not on the main listener";
  EXPECT_EQ(status_of(*r.site, true, "/metrics"), 200u) << "still on the metrics listener";
  EXPECT_EQ(r.restart_only, std::vector<std::string>{"metrics-on-main"});
}

TEST(ReloadSite, MetricsOnMainTurnedOffAlsoWaits) {
  const FixedMetrics metrics;
  Options running = running_options();
  running.metrics_on_main = true;
  const SiteFixtures fixtures{&metrics, running.metrics_on_main, nullptr};
  Options reread = running;
  reread.metrics_on_main = false;
  const Reloaded r = reload_site(running, reread, fixtures);
  EXPECT_EQ(status_of(*r.site, false, "/metrics"), 200u) << "stays until the restart";
  EXPECT_EQ(r.restart_only, std::vector<std::string>{"metrics-on-main"});
}

TEST(ReloadSite, AppliesTheReloadableSettings) {
  const printerfacts::testing::TempDir dir;
  std::ofstream(dir / "facts.txt") << "one\ntwo\nthree\n";
  const Options running = running_options();
  Options reread = running;
  reread.site.facts_file = dir / "facts.txt";
  reread.site.log_level = "warning";
  reread.site.allow_uid = {"0"};
  const Reloaded r = reload_site(running, reread, SiteFixtures{});
  EXPECT_EQ(r.site->content.facts.size(), 3u);
  EXPECT_EQ(r.log_level, "warning");
  EXPECT_EQ(r.site->peers.uids, std::vector<uid_t>{0});
  EXPECT_TRUE(r.restart_only.empty());
  EXPECT_NE(r.summary.find("3 facts"), std::string::npos) << r.summary;
}

TEST(ReloadSite, ListsEveryRestartOnlyChangeInHelpOrder) {
  const Options running = running_options();
  Options reread = running;
  reread.threads = 7;
  reread.listen[0] = parse_listen_address("unix:/run/printerfacts/other.sock");
  reread.site.log_level = "debug";
  const Reloaded r = reload_site(running, reread, SiteFixtures{});
  EXPECT_EQ(r.restart_only, (std::vector<std::string>{"listen", "threads"}));
}

TEST(ReloadSite, AConfigurationThatCouldNotStartIsRefused) {
  const Options running = running_options();
  Options reread = running;
  reread.socket_mode = 0666;  // restart-only, but invalid without --allow-world
  EXPECT_THROW(reload_site(running, reread, SiteFixtures{}), StartupError);
  reread = running;
  reread.site.facts_file = "/no/such/facts.txt";
  try {
    reload_site(running, reread, SiteFixtures{});
    FAIL() << "a missing facts file must refuse the reload";
  } catch (const StartupError& e) {
    EXPECT_NE(std::string(e.what()).find("/no/such/facts.txt"), std::string::npos) << e.what();
  }
  reread = running;
  reread.site.allow_uid = {"no-such-user-here"};
  EXPECT_THROW(reload_site(running, reread, SiteFixtures{}), StartupError);
}

}  // namespace
}  // namespace printerfacts
