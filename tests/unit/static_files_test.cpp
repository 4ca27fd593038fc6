#include "app/static_files.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <vector>

#include "temp_dir.hpp"
#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

using testing::TempDir;
using Segments = std::vector<std::string>;

TEST(SafeRelativePath, JoinsOrdinarySegments) {
  EXPECT_EQ(safe_relative_path(Segments{"style.css"}), "style.css");
  EXPECT_EQ(safe_relative_path(Segments{"img", "logo.png"}), "img/logo.png");
}

TEST(SafeRelativePath, RefusesEverySegmentThatCouldClimbOrHide) {
  for (const Segments& s : std::vector<Segments>{{},
                                                 {""},
                                                 {"."},
                                                 {".."},
                                                 {"a", ".."},
                                                 {"..", "etc", "passwd"},
                                                 {"a", "", "b"},
                                                 {"..\\..\\etc\\passwd"},
                                                 {"a\\b"},
                                                 {"a/../b"},
                                                 {std::string("a\0b", 3)},
                                                 {".htaccess"},
                                                 {".git", "config"}}) {
    EXPECT_FALSE(safe_relative_path(s)) << (s.empty() ? "(empty)" : s.front());
  }
}

TEST(StaticFiles, EmbeddedServesTheStylesheetWithTypeAndEtag) {
  const StaticFiles files = StaticFiles::embedded();
  const auto css = files.open("style.css");
  ASSERT_TRUE(css);
  EXPECT_EQ(css->content_type, "text/css; charset=utf-8");
  EXPECT_NE(css->embedded.find("blockquote"), std::string_view::npos);
  EXPECT_EQ(css->size, css->embedded.size());
  EXPECT_EQ(css->etag.front(), '"');
  EXPECT_FALSE(files.open("missing.css"));
}

class StaticDirectory : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(root_ / "sub");
    std::ofstream(root_ / "app.js") << "console.log(1);\n";
    std::ofstream(root_ / "sub/inner.txt") << "inner\n";
    std::ofstream(outside_ / "secret.txt") << "secret\n";
    std::filesystem::create_symlink(outside_ / "secret.txt", root_ / "escape.txt");
    std::filesystem::create_symlink("../../", root_ / "sub/up");
    std::filesystem::create_symlink("app.js", root_ / "alias.js");
    ::mkfifo((root_ / "fifo.txt").c_str(), 0600);
  }
  TempDir tmp_;
  std::string root_str_ = tmp_ / "root";
  std::filesystem::path root_ = root_str_;
  std::filesystem::path outside_ = tmp_.path();
};

TEST_F(StaticDirectory, ServesRegularFilesBelowTheRoot) {
  const StaticFiles files = StaticFiles::directory(root_str_);
  const auto js = files.open("app.js");
  ASSERT_TRUE(js);
  EXPECT_TRUE(js->file.is_open());
  EXPECT_EQ(js->size, 16u);
  EXPECT_EQ(js->content_type, "text/javascript; charset=utf-8");
  ASSERT_TRUE(files.open("sub/inner.txt"));
  EXPECT_TRUE(files.open("alias.js")) << "a symlink that stays inside the root is followed";
}

TEST_F(StaticDirectory, NeverLeavesTheRoot) {
  const StaticFiles files = StaticFiles::directory(root_str_);
  EXPECT_FALSE(files.open("escape.txt")) << "absolute symlink out of the root";
  EXPECT_FALSE(files.open("sub/up/secret.txt")) << "relative symlink out of the root";
  EXPECT_FALSE(files.open("../secret.txt"));
  EXPECT_FALSE(files.open("sub")) << "directories are not files";
}

TEST_F(StaticDirectory, AFifoIsRefusedWithoutBlocking) {
  const StaticFiles files = StaticFiles::directory(root_str_);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(files.open("fifo.txt"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
}

TEST(StaticFiles, MissingDirectoryIsAStartupErrorNamingIt) {
  try {
    StaticFiles::directory("/nonexistent/static");
    FAIL();
  } catch (const StartupError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/static"), std::string::npos);
  }
}

}  // namespace
}  // namespace printerfacts
