#include "config/settings.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "config/cli.hpp"

namespace printerfacts {
namespace {

// A value other than the default for every setting. The table must be covered: a setting added
// without a line here fails SettingsTable.EveryRowHasATestValue, and with it, the check that a
// reload applies exactly the settings that live in SiteOptions.
const std::map<std::string_view, std::string_view> kOtherValue = {
    {"listen", "unix:/run/other.sock"},
    {"socket-mode", "0600"},
    {"allow-world", "true"},
    {"access-log-format", "combined"},
    {"access-log-file", "/var/log/printerfacts/access.log"},
    {"proxy-protocol", "uid:0"},
    {"max-connections-per-uid", "64"},
    {"socket-guard", "off"},
    {"takeover", "true"},
    {"fd-store", "true"},
    {"socket-group", "adm"},
    {"backlog", "16"},
    {"max-connections", "9"},
    {"io-backend", "epoll"},
    {"threads", "3"},
    {"facts-file", "/srv/facts.txt"},
    {"static-dir", "/srv/static"},
    {"max-header-size", "16k"},
    {"max-body-size", "1k"},
    {"header-timeout", "90s"},
    {"idle-timeout", "5s"},
    {"send-timeout", "250ms"},
    {"shutdown-timeout", "1s"},
    {"shutdown-delay", "2s"},
    {"access-log", "off"},
    {"metrics-listen", "tcp:127.0.0.1:9"},
    {"metrics-socket-mode", "0640"},
    {"metrics-socket-group", "adm"},
    {"metrics-on-main", "true"},
    {"allow-uid", "www-data"},
    {"allow-gid", "adm"},
    {"trust-forwarded", "uid:www-data"},
    {"client-header", "X-Real-IP"},
    {"log-format", "json"},
    {"log-level", "warning"},
};

TEST(SettingsTable, EveryRowHasATestValue) {
  for (const Setting& s : settings()) EXPECT_TRUE(kOtherValue.count(s.name)) << s.name;
  EXPECT_EQ(kOtherValue.size(), settings().size());
}

TEST(SettingsTable, NamesAreUniqueFlagNames) {
  std::set<std::string_view> seen;
  for (const Setting& s : settings()) {
    EXPECT_TRUE(seen.insert(s.name).second) << s.name;
    EXPECT_EQ(s.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz-"), std::string_view::npos);
    EXPECT_EQ(find_setting(s.name), &s);
    EXPECT_FALSE(s.help.empty()) << s.name;
    EXPECT_FALSE(s.expected.empty()) << s.name;
  }
  EXPECT_EQ(find_setting("no-such-setting"), nullptr);
}

TEST(SettingsTable, DefaultsComeFromOptionsAndReadBackUnchanged) {
  for (const Setting& s : settings()) {
    Options o;
    for (const auto& v : s.get(Options{})) {
      if (s.repeatable) s.clear(o);
      EXPECT_TRUE(s.set(o, v, nullptr)) << s.name << " " << v;
    }
    EXPECT_TRUE(s.same(o, Options{})) << s.name;
  }
}

TEST(SettingsTable, EachValueSetsItsOwnFieldAndPrintsBackAsGiven) {
  for (const Setting& s : settings()) {
    Options o;
    ASSERT_TRUE(s.set(o, kOtherValue.at(s.name), nullptr)) << s.name;
    EXPECT_FALSE(s.same(o, Options{})) << s.name << ": not a change";
    EXPECT_EQ(s.get(o), std::vector<std::string>{std::string(kOtherValue.at(s.name))}) << s.name;
    for (const Setting& other : settings()) {
      if (&other != &s) {
        EXPECT_TRUE(other.same(o, Options{})) << s.name << " changed " << other.name;
      }
    }
    s.clear(o);
    EXPECT_TRUE(s.same(o, Options{})) << s.name << ": clear() gives the default back";
  }
}

// The reload's honesty, for every setting: a change is applied by a reload exactly when the
// setting lives in SiteOptions, and reported as waiting for a restart exactly otherwise.
TEST(SettingsTable, ReloadableExactlyWhenItLivesInSiteOptions) {
  for (const Setting& s : settings()) {
    Options changed;
    ASSERT_TRUE(s.set(changed, kOtherValue.at(s.name), nullptr));
    const bool site_changed = !(changed.site == Options{}.site);
    EXPECT_EQ(s.reloadable, site_changed) << s.name;
    const auto restart = restart_only_changes(Options{}, changed);
    EXPECT_EQ(restart.empty(), s.reloadable) << s.name;
    if (!s.reloadable) {
      EXPECT_EQ(restart, std::vector<std::string>{std::string(s.name)});
    }
  }
  EXPECT_FALSE(find_setting("metrics-on-main")->reloadable)
      << "the Site's routers take it from SiteFixtures, fixed at start";
}

TEST(SettingsTable, ValuesOfTheWrongFormAreRefused) {
  Options o;
  for (const auto& [name, bad] :
       std::vector<std::pair<const char*, const char*>>{{"threads", "many"},
                                                        {"io-backend", "uring"},
                                                        {"threads", "-1"},
                                                        {"socket-mode", "0999"},
                                                        {"socket-mode", "066000"},
                                                        {"idle-timeout", "soon"},
                                                        {"max-body-size", "1g"},
                                                        {"access-log", "maybe"},
                                                        {"log-format", "xml"},
                                                        {"log-level", "loud"},
                                                        {"client-header", "X-Client"},
                                                        {"listen", "ftp://x"},
                                                        {"allow-world", "perhaps"}}) {
    EXPECT_FALSE(find_setting(name)->set(o, bad, nullptr)) << name << " " << bad;
  }
  EXPECT_TRUE(o == Options{}) << "a refused value changes nothing";
}

TEST(NearestName, SuggestsTyposOnly) {
  EXPECT_EQ(nearest_name("facts-flie"), "facts-file");
  EXPECT_EQ(nearest_name("thread"), "threads");
  EXPECT_EQ(nearest_name("max-conections"), "max-connections");
  EXPECT_EQ(nearest_name("log-levle"), "log-level");
  EXPECT_EQ(nearest_name("colour"), "");
  EXPECT_EQ(nearest_name("lisen"), "listen");
}

TEST(EditDistance, CountsTranspositionsAsOne) {
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("abc", "abc"), 0u);
  EXPECT_EQ(edit_distance("abc", "acb"), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

}  // namespace
}  // namespace printerfacts
