#include "config/cli.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "temp_dir.hpp"

namespace printerfacts {
namespace {

CommandLine parse(std::vector<const char*> args, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "printerfacts");
  return parse_command_line(static_cast<int>(args.size()), args.data(),
                            [env](const char* name) -> const char* {
                              const auto it = env.find(name);
                              return it == env.end() ? nullptr : it->second.c_str();
                            });
}

TEST(CommandLine, DefaultsToTcpPort3000OnAllAddresses) {
  const auto cl = parse({});
  ASSERT_TRUE(cl.options);
  ASSERT_EQ(cl.options->listen.size(), 1u);
  EXPECT_EQ(cl.options->listen[0].to_string(), "tcp:[::]:3000");
  EXPECT_EQ(cl.options->socket_mode, 0660u);
  EXPECT_TRUE(cl.options->access_log);
}

TEST(CommandLine, FlagsNotGivenLeaveOptionsAsOptionsDefaultsAre) {
  // The command line fills Options{}, it never restates its defaults: only the listen address,
  // which comes from the environment, differs.
  const auto cl = parse({});
  ASSERT_TRUE(cl.options);
  Options expected;
  expected.listen = cl.options->listen;
  EXPECT_TRUE(*cl.options == expected);
  EXPECT_NO_THROW(validate(expected)) << "Options{} with an address is a valid configuration";
  EXPECT_GE(worker_threads(expected), 1u) << "threads 0: one per CPU";
}

TEST(CommandLine, PortFromTheEnvironment) {
  const auto cl = parse({}, {{"PORT", "8080"}});
  EXPECT_EQ(cl.options->listen[0].to_string(), "tcp:[::]:8080");
}

TEST(CommandLine, SockpathWinsOverPort) {
  const auto cl = parse({}, {{"PORT", "8080"}, {"SOCKPATH", "/run/pf.sock"}});
  EXPECT_EQ(cl.options->listen[0].to_string(), "unix:/run/pf.sock");
}

TEST(CommandLine, FlagsWinOverTheEnvironmentAndRepeat) {
  const auto cl = parse({"--listen", "unix:/a.sock", "--listen", "tcp:127.0.0.1:9"},
                        {{"SOCKPATH", "/run/pf.sock"}});
  ASSERT_EQ(cl.options->listen.size(), 2u);
  EXPECT_EQ(cl.options->listen[0].to_string(), "unix:/a.sock");
  EXPECT_EQ(cl.options->listen[1].to_string(), "tcp:127.0.0.1:9");
}

TEST(CommandLine, ParsesModesSizesAndDurations) {
  const auto cl =
      parse({"--socket-mode", "0600", "--max-header-size", "16k", "--idle-timeout", "500ms",
             "--shutdown-timeout", "2s", "--access-log", "off", "--threads", "3"});
  ASSERT_TRUE(cl.options);
  EXPECT_EQ(cl.options->socket_mode, 0600u);
  EXPECT_EQ(cl.options->max_header_size, 16384u);
  EXPECT_EQ(cl.options->idle_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(cl.options->shutdown_timeout, std::chrono::seconds(2));
  EXPECT_FALSE(cl.options->access_log);
  EXPECT_EQ(cl.options->threads, 3u);
}

TEST(CommandLine, BadValuesFailWithoutOptions) {
  EXPECT_FALSE(parse({"--socket-mode", "999"}).options);
  EXPECT_FALSE(parse({"--idle-timeout", "soon"}).options);
  EXPECT_FALSE(parse({"--listen", "ftp://x"}).options);
  EXPECT_FALSE(parse({"--access-log", "maybe"}).options);
  EXPECT_FALSE(parse({"--no-such-flag"}).options);
  EXPECT_NE(parse({"--no-such-flag"}).exit_code, 0);
}

TEST(CommandLine, HelpAndVersionExitZero) {
  ::testing::internal::CaptureStdout();
  const auto help = parse({"--help"});
  const std::string text = ::testing::internal::GetCapturedStdout();
  EXPECT_FALSE(help.options);
  EXPECT_EQ(help.exit_code, 0);
  for (const char* item :
       {"--listen", "--socket-mode", "--socket-group", "--threads", "--facts-file", "--static-dir",
        "--shutdown-timeout", "--check", "--access-log", "SOCKPATH", "PORT", "LISTEN_FDS"}) {
    EXPECT_NE(text.find(item), std::string::npos) << item;
  }
  ::testing::internal::CaptureStdout();
  const auto version = parse({"--version"});
  EXPECT_NE(::testing::internal::GetCapturedStdout().find("printerfacts"), std::string::npos);
  EXPECT_EQ(version.exit_code, 0);
}

TEST(CommandLine, ConfigFileSuppliesFlagsAndTheCommandLineWins) {
  const printerfacts::testing::TempDir dir;
  std::ofstream(dir / "pf.toml") << "facts-file = \"/srv/facts.txt\"\nthreads = 3\n"
                                 << "allow-uid = [\"www-data\", \"7\"]\nshutdown-delay = \"5s\"\n";
  const std::string config = dir / "pf.toml";
  const auto cl = parse({"--config", config.c_str(), "--threads", "2"});
  ASSERT_TRUE(cl.options) << cl.error;
  EXPECT_EQ(cl.options->facts_file, "/srv/facts.txt");
  EXPECT_EQ(cl.options->threads, 2u);
  EXPECT_EQ(cl.options->allow_uid, (std::vector<std::string>{"www-data", "7"}));
  EXPECT_EQ(cl.options->shutdown_delay, std::chrono::seconds(5));
  EXPECT_EQ(cl.options->config_file, config);
}

TEST(CommandLine, ConfigFileErrorsNameTheFileOrTheSetting) {
  const printerfacts::testing::TempDir dir;
  const std::string missing = dir / "missing.toml";
  const auto gone = parse({"--config", missing.c_str()});
  EXPECT_FALSE(gone.options);
  EXPECT_NE(gone.error.find(missing), std::string::npos) << gone.error;
  std::ofstream(dir / "typo.toml") << "facts-fiel = \"/srv/facts.txt\"\n";
  const std::string typo = dir / "typo.toml";
  const auto misspelt = parse({"--config", typo.c_str()});
  EXPECT_FALSE(misspelt.options) << "an unknown setting is an error, not ignored";
  EXPECT_NE(misspelt.error.find("facts-fiel"), std::string::npos) << misspelt.error;
}

TEST(RestartOnlyChanges, NamesTheSettingsAReloadCannotApply) {
  Options running;
  running.listen.push_back(parse_listen_address("unix:/run/a.sock"));
  Options reread = running;
  reread.facts_file = "/srv/new.txt";
  reread.static_dir = "/srv/static";
  reread.log_level = "debug";
  reread.allow_uid = {"www-data"};
  reread.allow_gid = {"adm"};
  EXPECT_TRUE(restart_only_changes(running, reread).empty()) << "all of these are reloadable";
  reread.listen[0] = parse_listen_address("unix:/run/b.sock");
  reread.threads = running.threads + 1;
  reread.idle_timeout = std::chrono::seconds(5);
  EXPECT_EQ(restart_only_changes(running, reread),
            (std::vector<std::string>{"listen", "threads", "idle-timeout"}));
}

TEST(Validate, RejectsNonsense) {
  Options o;
  o.listen.push_back(parse_listen_address("tcp:0"));
  o.threads = 1;
  EXPECT_NO_THROW(validate(o));
  Options bad = o;
  bad.threads = 1025;
  EXPECT_ANY_THROW(validate(bad));
  bad = o;
  bad.socket_mode = 0440;
  EXPECT_ANY_THROW(validate(bad));
  bad = o;
  bad.socket_group = "no-such-group-here";
  EXPECT_ANY_THROW(validate(bad));
  bad = o;
  bad.listen.push_back(o.listen[0]);
  EXPECT_ANY_THROW(validate(bad));
}

}  // namespace
}  // namespace printerfacts
