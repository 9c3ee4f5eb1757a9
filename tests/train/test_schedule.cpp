#include <gtest/gtest.h>

#include <cmath>

#include "config/config.h"
#include "train/schedule.h"
#include "util/error.h"

namespace cca {
namespace {

ScheduleConfig schedule(const std::string& kind, int64_t warmup, double min_ratio = 0.1) {
  ScheduleConfig s = default_config().schedule;
  s.kind = kind;
  s.warmup_steps = warmup;
  s.min_lr_ratio = min_ratio;
  return s;
}

TEST(LrSchedule, LinearWarmupReachesPeak) {
  const LrSchedule lr(schedule("cosine", 10), 1e-3, 100);
  EXPECT_DOUBLE_EQ(lr.at(0), 1e-4);
  EXPECT_DOUBLE_EQ(lr.at(4), 5e-4);
  EXPECT_DOUBLE_EQ(lr.at(9), 1e-3);
  EXPECT_DOUBLE_EQ(lr.at(10), 1e-3);  // cosine starts at the peak
}

TEST(LrSchedule, CosineEndsAtTheFloorThroughTheMidpoint) {
  const LrSchedule lr(schedule("cosine", 10, 0.1), 1.0, 111);
  EXPECT_NEAR(lr.at(110), 0.1, 1e-12);
  EXPECT_NEAR(lr.at(60), 0.55, 1e-12);   // halfway between warmup end (10) and last step (110)
  EXPECT_NEAR(lr.at(5000), 0.1, 1e-12);  // past the end: the final value
  for (int64_t s = 11; s < 111; ++s) EXPECT_LE(lr.at(s), lr.at(s - 1) + 1e-15) << s;
}

TEST(LrSchedule, WsdHoldsThenCoolsDownLinearlyOrBySqrt) {
  ScheduleConfig s = schedule("wsd", 10, 0.0);
  s.decay_fraction = 0.2;
  const LrSchedule linear(s, 2.0, 100);  // decay over steps 80..99
  EXPECT_DOUBLE_EQ(linear.at(50), 2.0);
  EXPECT_DOUBLE_EQ(linear.at(79), 2.0);
  EXPECT_NEAR(linear.at(80), 2.0 * (1 - 1.0 / 20), 1e-12);
  EXPECT_NEAR(linear.at(89), 2.0 * (1 - 10.0 / 20), 1e-12);
  EXPECT_NEAR(linear.at(99), 0.0, 1e-12);
  s.decay_shape = "sqrt";
  const LrSchedule root(s, 2.0, 100);
  EXPECT_NEAR(root.at(89), 2.0 * (1 - std::sqrt(0.5)), 1e-12);
  EXPECT_LT(root.at(89), linear.at(89));  // 1 - sqrt cools faster at first
}

TEST(LrSchedule, ConstantStaysAtPeakAndFloorIsRespected) {
  const LrSchedule lr(schedule("constant", 0), 3e-4, 50);
  EXPECT_DOUBLE_EQ(lr.at(0), 3e-4);
  EXPECT_DOUBLE_EQ(lr.at(49), 3e-4);
  const LrSchedule cos(schedule("cosine", 0, 0.25), 4.0, 10);
  for (int64_t s = 0; s < 10; ++s) EXPECT_GE(cos.at(s), 1.0 - 1e-12);
}

TEST(LrSchedule, DegenerateLengthsAndUnknownKinds) {
  const LrSchedule one(schedule("cosine", 0), 1.0, 1);
  EXPECT_TRUE(std::isfinite(one.at(0)));
  const LrSchedule all_warmup(schedule("cosine", 20), 1.0, 20);
  EXPECT_DOUBLE_EQ(all_warmup.at(19), 1.0);
  EXPECT_THROW(LrSchedule(schedule("linear", 0), 1.0, 10), Error);
}

}  // namespace
}  // namespace cca
