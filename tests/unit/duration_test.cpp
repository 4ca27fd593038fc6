#include "config/duration.hpp"

#include <gtest/gtest.h>

namespace printerfacts {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, AcceptsUnitsAndBareSeconds) {
  EXPECT_EQ(parse_duration("10s"), milliseconds(10'000));
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("2m"), milliseconds(120'000));
  EXPECT_EQ(parse_duration("1h"), milliseconds(3'600'000));
  EXPECT_EQ(parse_duration("3"), milliseconds(3'000));
  EXPECT_EQ(parse_duration("0.5"), milliseconds(500));
}

TEST(ParseDuration, RejectsMalformedNegativeAndHuge) {
  EXPECT_FALSE(parse_duration(""));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration("10 s"));
  EXPECT_FALSE(parse_duration("10x"));
  EXPECT_FALSE(parse_duration("2d"));
  EXPECT_FALSE(parse_duration("25h"));
  EXPECT_FALSE(parse_duration("nan"));
}

TEST(ParseDuration, AcceptsPartsLargestFirstAsSystemdAndGoDo) {
  EXPECT_EQ(parse_duration("1m30s"), milliseconds(90'000));
  EXPECT_EQ(parse_duration("1h5m"), milliseconds(3'900'000));
  EXPECT_EQ(parse_duration("2s500ms"), milliseconds(2'500));
  EXPECT_EQ(parse_duration("1min30s"), milliseconds(90'000));
}

TEST(ParseDuration, RejectsPartsOutOfOrderRepeatedOrWithoutUnit) {
  EXPECT_FALSE(parse_duration("30s1m"));
  EXPECT_FALSE(parse_duration("1s1s"));
  EXPECT_FALSE(parse_duration("1m30"));
  EXPECT_FALSE(parse_duration("1m-30s"));
  EXPECT_FALSE(parse_duration("23h61m"));
}

TEST(ParseSize, AcceptsBinaryMultiples) {
  EXPECT_EQ(parse_size("8192"), 8192u);
  EXPECT_EQ(parse_size("8k"), 8192u);
  EXPECT_EQ(parse_size("1M"), 1048576u);
  EXPECT_EQ(parse_size("0"), 0u);
}

TEST(ParseSize, RejectsFractionsOfBytesAndOverflow) {
  EXPECT_FALSE(parse_size("1.5"));
  EXPECT_FALSE(parse_size("2g"));
  EXPECT_FALSE(parse_size("99999m"));
  EXPECT_FALSE(parse_size("k"));
}

TEST(FormatDuration, RoundTrips) {
  EXPECT_EQ(format_duration(milliseconds(10'000)), "10s");
  EXPECT_EQ(format_duration(milliseconds(1'500)), "1500ms");
  EXPECT_EQ(parse_duration(format_duration(milliseconds(1'500))), milliseconds(1'500));
}

}  // namespace
}  // namespace printerfacts
