// The one number formatter (paraplan/format.hpp) that the CLI, the GUI, the exports and the executor's
// progress lines share. Expected strings written out by hand.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

#include "paraplan/format.hpp"

using namespace paraplan::planner::text;

TEST(Format, BytesInBinaryUnits) {
  EXPECT_EQ(gib(16.0 * (1ull << 30)), "16.00");
  EXPECT_EQ(gib_unit(1.5 * (1ull << 30)), "1.50 GiB");
  EXPECT_EQ(mib_unit(2'076'672), "1.980 MiB");     // 2,076,672 / 1,048,576 = 1.98047
  EXPECT_EQ(bytes_unit(512.0 * (1 << 20)), "512.00 MiB");  // below 1 GiB: MiB, not "0.50 GiB"
  EXPECT_EQ(bytes_unit(70.0 * (1ull << 30)), "70.00 GiB");
}

TEST(Format, CountsWithThousandsSeparators) {
  EXPECT_EQ(count(8'030'261'248LL), "8,030,261,248");  // LLaMA-3-8B's parameters
  EXPECT_EQ(count(-1234567), "-1,234,567");
  EXPECT_EQ(count(999), "999");
  EXPECT_EQ(count(std::numeric_limits<int64_t>::min()), "-9,223,372,036,854,775,808");
  EXPECT_EQ(count(1234.6), "1,235");  // doubles round to the nearest integer
  EXPECT_EQ(short_count(8.03e9), "8.03 B");
  EXPECT_EQ(short_count(3.41e6), "3.41 M");
  EXPECT_EQ(short_count(512), "512");
}

TEST(Format, PercentAndSeconds) {
  EXPECT_EQ(percent(0.415), "41.5%");
  EXPECT_EQ(percent(0.68912, 2), "68.91%");
  EXPECT_EQ(seconds(89.047), "89 s");   // three significant digits
  EXPECT_EQ(seconds(0.0456), "45.6 ms");
  EXPECT_EQ(seconds(1.234e-5), "12.3 us");
  EXPECT_EQ(seconds(1e-12), "0 s");     // rounding residue of sums
}
