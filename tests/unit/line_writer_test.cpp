#include "util/line_writer.hpp"

#include <gtest/gtest.h>

#include <cstdio>
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
  // Runs of plain bytes are copied whole: escapes at the start, the end, side by side, none.
  EXPECT_EQ(written([](LineWriter& w) { w.json_escaped("\"\"x\x01"); }), "\\\"\\\"x\\u0001");
  EXPECT_EQ(written([](LineWriter& w) { w.json_escaped("plain text"); }), "plain text");
  EXPECT_EQ(written([](LineWriter& w) { w.json_escaped(""); }), "");
  EXPECT_EQ(written([](LineWriter& w) { w.json_escaped(std::string_view("\0\x7f~ ", 4)); }),
            "\\u0000\\u007f~ ");
}

TEST(LineWriterTest, JsonEscapingAgreesWithAByteByByteReferenceOnEveryByte) {
  std::string all;
  for (int c = 0; c < 256; ++c) all += static_cast<char>(c);
  std::string expected;
  for (const char ch : all) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      expected += '\\';
      expected += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[7];
      std::snprintf(hex, sizeof hex, "\\u%04x", c);
      expected += hex;
    } else {
      expected += ch;
    }
  }
  std::string out(6 * all.size(), '\0');
  LineWriter w(out.data(), out.data() + out.size());
  w.json_escaped(all);
  out.resize(static_cast<std::size_t>(w.end() - out.data()));
  EXPECT_EQ(out, expected);
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
