#include "app/facts.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "util/startup_error.hpp"

namespace printerfacts {
namespace {

TEST(Facts, EmbeddedHasAtLeastSixtyDistinctFacts) {
  const Facts facts = Facts::embedded();
  ASSERT_GE(facts.size(), 60u);
  std::set<std::string> distinct;
  for (std::size_t i = 0; i < facts.size(); ++i) {
    const auto& text = facts.at(i).text;
    EXPECT_EQ(text.back(), '\n');
    EXPECT_EQ(text.find('\n'), text.size() - 1);
    distinct.insert(text);
  }
  EXPECT_EQ(distinct.size(), facts.size());
}

TEST(Facts, ParseSkipsBlankLinesAndStripsCarriageReturns) {
  const Facts facts = Facts::parse("one\r\n\n  \ntwo <b>&</b>\nthree", "test");
  ASSERT_EQ(facts.size(), 3u);
  EXPECT_EQ(facts.at(0).text, "one\n");
  EXPECT_EQ(facts.at(1).text, "two <b>&</b>\n");
  EXPECT_EQ(facts.at(1).html, "two &lt;b&gt;&amp;&lt;/b&gt;");
  EXPECT_EQ(facts.at(2).text, "three\n");
}

TEST(Facts, ParseRejectsEmptyAndInvalidUtf8WithTheLine) {
  EXPECT_THROW(Facts::parse("", "x"), StartupError);
  EXPECT_THROW(Facts::parse("\n \n", "x"), StartupError);
  try {
    Facts::parse("fine\nbad \xff byte\n", "facts file f.txt");
    FAIL();
  } catch (const StartupError& e) {
    EXPECT_STREQ(e.what(), "facts file f.txt: line 2 is not valid UTF-8");
  }
}

TEST(Facts, PickIsUniformEnoughAndRepeatableWithASeed) {
  const Facts facts = Facts::parse("a\nb\nc\nd\n", "t");
  Random r1(42), r2(42);
  std::map<std::string, int> seen;
  for (int i = 0; i < 4000; ++i) {
    const auto& a = facts.pick(r1);
    EXPECT_EQ(&a, &facts.pick(r2));
    ++seen[a.text];
  }
  ASSERT_EQ(seen.size(), 4u);
  for (const auto& [fact, n] : seen) EXPECT_GT(n, 800) << fact;
}

TEST(Facts, LoadFileNamesTheMissingPath) {
  try {
    Facts::load_file("/nonexistent/facts.txt");
    FAIL();
  } catch (const StartupError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/facts.txt"), std::string::npos);
  }
}

TEST(Facts, LoadFileReadsUtf8Lines) {
  char path[] = "/tmp/pf-facts-XXXXXX";
  const int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << "Drucker träumen in Farbe.\nSecond fact\n";
  const Facts facts = Facts::load_file(path);
  ::unlink(path);
  ASSERT_EQ(facts.size(), 2u);
  EXPECT_EQ(facts.at(0).text, "Drucker träumen in Farbe.\n");
}

TEST(Utf8, ValidatesStrictly) {
  EXPECT_TRUE(is_valid_utf8("ascii"));
  EXPECT_TRUE(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x96\xa8"));  // é € 🖨
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));                             // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));                         // surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));                     // past U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));                             // truncated
}

}  // namespace
}  // namespace printerfacts
