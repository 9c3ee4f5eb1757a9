#include <gtest/gtest.h>

#include "train/mfu.h"
#include "util/error.h"

namespace cca {
namespace {

TEST(Mfu, PeakTableMatchesDeviceNames) {
  EXPECT_DOUBLE_EQ(*peak_flops_for_device("NVIDIA H200"), 989e12);
  EXPECT_DOUBLE_EQ(*peak_flops_for_device("NVIDIA H100 80GB HBM3"), 989e12);
  EXPECT_DOUBLE_EQ(*peak_flops_for_device("NVIDIA H100 PCIe"), 756e12);
  EXPECT_DOUBLE_EQ(*peak_flops_for_device("NVIDIA A100-SXM4-80GB"), 312e12);
  EXPECT_FALSE(peak_flops_for_device("CPU (16 threads)").has_value());
}

TEST(Mfu, RatioOfAchievedToPeak) {
  // llm.c's GPT-2 124M on H100: ≈468K tokens/s/GPU at ≈ 6·124M + attention ≈ 0.8 GFLOP/token.
  const auto mfu = model_flops_utilisation(468e3, 0.8e9, 989e12);
  ASSERT_TRUE(mfu.has_value());
  EXPECT_NEAR(*mfu, 468e3 * 0.8e9 / 989e12, 1e-15);
  EXPECT_FALSE(model_flops_utilisation(1e6, 1e9, std::nullopt).has_value());
}

TEST(Mfu, OverOneHundredPercentIsAnErrorNotANumber) {
  try {
    model_flops_utilisation(2e6, 1e9, 989e12);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MFU would be 202.2%"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cca
