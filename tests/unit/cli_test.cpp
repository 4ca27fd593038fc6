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
}

TEST(CommandLine, AWrongValueNamesTheFlagTheFormAndAnExampleWithExitStatus64) {
  const auto cl = parse({"--threads", "many"});
  EXPECT_FALSE(cl.options);
  EXPECT_EQ(cl.exit_code, 64) << "EX_USAGE";
  EXPECT_EQ(cl.error, "--threads \"many\": expected a whole number such as 4 (0: one per CPU)");
  EXPECT_EQ(parse({"--idle-timeout", "soon"}).error,
            "--idle-timeout \"soon\": expected a duration such as 60s or 1m30s");
}

TEST(CommandLine, AnUnknownFlagSuggestsTheNearestOne) {
  const auto cl = parse({"--facts-flie", "/srv/facts.txt"});
  EXPECT_EQ(cl.exit_code, 64);
  EXPECT_EQ(cl.error, "unknown flag --facts-flie; did you mean --facts-file?");
  EXPECT_EQ(parse({"--chek"}).error, "unknown flag --chek; did you mean --check?");
  EXPECT_EQ(parse({"--max-conections=5"}).error,
            "unknown flag --max-conections; did you mean --max-connections?");
  EXPECT_EQ(parse({"--zzzzzzzz"}).error, "unknown flag --zzzzzzzz") << "nothing near: no guess";
  EXPECT_EQ(parse({"stray"}).error, "unexpected argument \"stray\"");
  EXPECT_EQ(parse({"--threads"}).exit_code, 64) << "a missing value is a usage error too";
}

TEST(CommandLine, OnOffFlagsTakeAnOptionalValue) {
  EXPECT_TRUE(parse({"--allow-world"}).options->allow_world);
  EXPECT_FALSE(parse({"--allow-world=false"}).options->allow_world);
  EXPECT_TRUE(parse({"--metrics-on-main"}).options->metrics_on_main);
}

TEST(CommandLine, LogLevelWarningIsWhatTheLogPrints) {
  const auto cl = parse({"--log-level", "warning"});
  ASSERT_TRUE(cl.options) << cl.error;
  EXPECT_EQ(cl.options->site.log_level, "warning");
  EXPECT_NO_THROW(validate(cl.options->site));
}

TEST(CommandLine, DurationsInPartsAsSystemdWritesThem) {
  const auto cl = parse({"--idle-timeout", "1m30s"});
  ASSERT_TRUE(cl.options) << cl.error;
  EXPECT_EQ(cl.options->idle_timeout, std::chrono::seconds(90));
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
  EXPECT_EQ(cl.options->site.facts_file, "/srv/facts.txt");
  EXPECT_EQ(cl.options->threads, 2u);
  EXPECT_EQ(cl.options->site.allow_uid, (std::vector<std::string>{"www-data", "7"}));
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
  EXPECT_EQ(misspelt.exit_code, 78) << "EX_CONFIG";
  EXPECT_EQ(misspelt.error,
            typo + ":1: unknown setting \"facts-fiel\"; did you mean \"facts-file\"?");
  EXPECT_EQ(gone.exit_code, 78);
}

// Each case: the file's text, and the error expected after "FILE:".
TEST(CommandLine, ConfigFileErrorsNameTheLineTheKeyTheFormAndAnExample) {
  const printerfacts::testing::TempDir dir;
  const std::string path = dir / "pf.toml";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"# comment\nthreads = \"many\"\n",
       "2: threads = \"many\": expected a whole number such as 4 (0: one per CPU)"},
      {"\n\nidle-timeout = \"soon\"\n",
       "3: idle-timeout = \"soon\": expected a duration such as 60s or 1m30s"},
      {"threads = many\n", "1:11: "},  // TOML itself, with line and column
      {"listen = \"unix:/a.sock\"\nlisten = \"unix:/b.sock\"\n", "2:"},
      {"socket-mode = [\"0660\"]\n",
       "1: socket-mode takes one value, not a list (expected an octal mode such as 0660)"},
      {"[server]\nthreads = 2\n",
       "1: [server] is a section; printerfacts reads keys at the top level only"},
      {"check = true\n", "1: \"check\" is given on the command line, not in a config file"},
      {"allow-uid = [\"www-data\", 7, [1]]\n", "1: allow-uid = [ 1 ]: expected"},
      {"log-level = \"loud\"\n",
       "1: log-level = \"loud\": expected trace, debug, info, warn, warning, error, critical or "
       "off"},
  };
  for (const auto& [text, expected] : cases) {
    std::ofstream(path, std::ios::trunc) << text;
    const auto cl = parse({"--config", path.c_str()});
    EXPECT_FALSE(cl.options) << text;
    EXPECT_EQ(cl.exit_code, 78) << text;
    EXPECT_EQ(cl.error.rfind(path + ":" + expected, 0), 0u) << text << " gave: " << cl.error;
  }
}

TEST(CommandLine, OriginsSayWhereEachValueCameFrom) {
  const printerfacts::testing::TempDir dir;
  std::ofstream(dir / "pf.toml") << "# settings\nthreads = 3\n\nfacts-file = \"/f\"\n";
  const std::string config = dir / "pf.toml";
  const auto cl = parse({"--config", config.c_str(), "--facts-file", "/g"}, {{"PORT", "8080"}});
  ASSERT_TRUE(cl.options) << cl.error;
  EXPECT_EQ(cl.origins.at("threads"), config + ":2");
  EXPECT_EQ(cl.origins.at("facts-file"), "command line");
  EXPECT_EQ(cl.origins.at("listen"), "environment PORT");
  EXPECT_EQ(cl.origins.at("backlog"), "default");
  EXPECT_EQ(cl.origins.size(), settings().size());
}

TEST(CommandLine, PrintConfigIsAFileThatGivesTheSameConfiguration) {
  const printerfacts::testing::TempDir dir;
  const auto first = parse({"--listen",
                            "unix:/run/a b.sock",
                            "--metrics-listen",
                            "tcp:[::1]:9",
                            "--socket-group",
                            "adm",
                            "--allow-uid",
                            "www-data",
                            "--allow-uid",
                            "7",
                            "--threads",
                            "2",
                            "--allow-world",
                            "--access-log",
                            "off",
                            "--idle-timeout",
                            "1m30s",
                            "--client-header",
                            "Forwarded",
                            "--log-format",
                            "json",
                            "--socket-mode",
                            "0600"});
  ASSERT_TRUE(first.options) << first.error;
  const std::string text = render_config(*first.options, first.origins);
  EXPECT_NE(text.find("threads = 2  # command line\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# facts-file is not set  # default, reloadable\n"), std::string::npos)
      << text;
  std::ofstream(dir / "printed.toml") << text;
  const std::string printed = dir / "printed.toml";
  const auto second = parse({"--config", printed.c_str()});
  ASSERT_TRUE(second.options) << second.error << "\n" << text;
  Options expected = *first.options;
  expected.config_file = printed;
  EXPECT_TRUE(*second.options == expected) << text;
}

TEST(RestartOnlyChanges, NamesTheSettingsAReloadCannotApply) {
  Options running;
  running.listen.push_back(parse_listen_address("unix:/run/a.sock"));
  Options reread = running;
  reread.site.facts_file = "/srv/new.txt";
  reread.site.static_dir = "/srv/static";
  reread.site.log_level = "debug";
  reread.site.allow_uid = {"www-data"};
  reread.site.allow_gid = {"adm"};
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
