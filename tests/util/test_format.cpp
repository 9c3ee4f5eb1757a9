#include <gtest/gtest.h>

#include <stdexcept>

#include "util/format.h"

namespace cca {
namespace {

TEST(Format, PositionalFieldsAndBraces) {
  EXPECT_EQ(format("a {} b {} c", 1, "two"), "a 1 b two c");
  EXPECT_EQ(format("{{literal}} {}", true), "{literal} true");
  EXPECT_EQ(format("no fields"), "no fields");
}

TEST(Format, Specs) {
  EXPECT_EQ(format("{:.3f}", 3.14159), "3.142");
  EXPECT_EQ(format("{:.2e}", 12345.0), "1.23e+04");
  EXPECT_EQ(format("[{:>5}]", 42), "[   42]");
  EXPECT_EQ(format("[{:<5}]", 42), "[42   ]");
  EXPECT_EQ(format("{:x}", 255), "ff");
}

TEST(Format, ArgumentCountMismatchThrows) {
  EXPECT_THROW(format("{} {}", 1), std::invalid_argument);
  EXPECT_THROW(format("{}", 1, 2), std::invalid_argument);
  EXPECT_THROW(format("{:q}", 1), std::invalid_argument);
  EXPECT_THROW(format("{", 1), std::invalid_argument);
}

TEST(Format, HumanUnits) {
  EXPECT_EQ(human_count(999), "999");
  EXPECT_EQ(human_count(5575682), "5.576M");
  EXPECT_EQ(human_count(124.4e6), "124.4M");
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(1024), "1.00 KiB");
  EXPECT_EQ(human_bytes(3.5 * 1024 * 1024 * 1024), "3.50 GiB");
}

}  // namespace
}  // namespace cca
