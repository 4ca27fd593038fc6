#include "util/line_writer.hpp"

#include <gtest/gtest.h>

#include <string>

namespace printerfacts {
namespace {

std::string written(void (*write)(LineWriter&)) {
  std::string out(256, '\0');
  LineWriter w(out.data(), out.data() + out.size());
  write(w);
  out.resize(static_cast<std::size_t>(w.end() - out.data()));
  return out;
}

TEST(LineWriterTest, PiecesAndNumbers) {
  EXPECT_EQ(written([](LineWriter& w) {
              w << "GET " << std::string_view() << '/' << std::string_view("fact");
              w << ' ';
              w.number(0) << ' ';
              w.number(18446744073709551615ull);
            }),
            "GET /fact 0 18446744073709551615");
}

TEST(LineWriterTest, ThousandthsAndThreeDigits) {
  EXPECT_EQ(written([](LineWriter& w) { w.thousandths(42); }), "0.042");
  EXPECT_EQ(written([](LineWriter& w) { w.thousandths(1234567); }), "1234.567");
  EXPECT_EQ(written([](LineWriter& w) { w.digits3(7); }), "007");
}

TEST(LineWriterTest, LogEscapingCannotForgeALine) {
  EXPECT_EQ(written([](LineWriter& w) { w.log_escaped("/a\"b\\c\r\nX: \x7f\xff"); }),
            "/a\\x22b\\x5cc\\x0d\\x0aX: \\x7f\\xff");
}

TEST(LineWriterTest, JsonEscapingKeepsEveryByte) {
  EXPECT_EQ(written([](LineWriter& w) { w.json_escaped("a\"b\\c\n\xc3"); }),
            "a\\\"b\\\\c\\u000a\\u00c3");
}

#ifndef NDEBUG
TEST(LineWriterDeathTest, WritingPastTheReservedEndAbortsInCheckedBuilds) {
  EXPECT_DEATH(
      {
        std::string out(8, '\0');
        LineWriter w(out.data(), out.data() + out.size());
        w << "12345678" << 'x';
      },
      "1 bytes to write, 0 reserved");
  EXPECT_DEATH(
      {
        std::string out(10, '\0');
        LineWriter w(out.data(), out.data() + out.size());
        w.log_escaped("abc");  // up to 12 bytes
      },
      "12 bytes to write, 10 reserved");
}
#endif

}  // namespace
}  // namespace printerfacts
