// RoPE scaling (attention.rope_scaling) against the published formulas, written out here pair by
// pair in plain double arithmetic: linear position interpolation, NTK-aware base, and YaRN's ramp
// and temperature as the authors' reference implementation (and transformers) compute them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "ops/device.h"
#include "ops/rope.h"
#include "util/error.h"

namespace cca {
namespace {

constexpr double kTheta = 10000.0;
constexpr double kPi = 3.14159265358979323846;

RopeScaling scaling(const std::string& kind, double factor, int64_t original) {
  return RopeScaling::parse(kind, factor, original);
}

// ω_i = θ^{-2i/r}.
double plain_frequency(int64_t i, int64_t r, double theta) {
  return std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(r));
}

// YaRN: pair d turns L·ω_d / 2π times over the original length L. Pairs turning more than
// β_fast = 32 times keep ω_d, pairs turning fewer than β_slow = 1 times take ω_d / s, and the
// pairs between blend linearly in the pair index, the boundaries rounded outwards.
double yarn_frequency(int64_t i, int64_t r, double theta, double s, int64_t L) {
  const auto boundary = [&](double rotations) {  // solves L·ω_d / 2π = rotations for d
    return static_cast<double>(r) * std::log(static_cast<double>(L) / (2 * kPi * rotations)) /
           (2 * std::log(theta));
  };
  const double low = std::max(0.0, std::floor(boundary(32.0)));
  const double high = std::min(static_cast<double>(r - 1), std::ceil(boundary(1.0)));
  const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
  const double w = plain_frequency(i, r, theta);
  return (1.0 - ramp) * w + ramp * w / s;
}

// The expected frequencies of every pair, by kind.
std::vector<double> expected_frequencies(const std::string& kind, int64_t r, double s, int64_t L) {
  std::vector<double> w(static_cast<size_t>(r / 2));
  for (int64_t i = 0; i < r / 2; ++i) {
    if (kind == "none") w[i] = plain_frequency(i, r, kTheta);
    if (kind == "linear") w[i] = plain_frequency(i, r, kTheta) / s;
    if (kind == "ntk") {
      const double base = kTheta * std::pow(s, static_cast<double>(r) / static_cast<double>(r - 2));
      w[i] = plain_frequency(i, r, base);
    }
    if (kind == "yarn") w[i] = yarn_frequency(i, r, kTheta, s, L);
  }
  return w;
}

// x rotated pair by pair at positions offset .. offset + S - 1 with frequencies w, in float64.
at::Tensor rotate_reference(const at::Tensor& x, int64_t offset, const std::vector<double>& w) {
  const at::Tensor xd = x.to(at::kDouble).contiguous();
  at::Tensor out = xd.clone();
  const int64_t B = x.size(0), S = x.size(1), H = x.size(2), half = static_cast<int64_t>(w.size());
  auto in = xd.accessor<double, 4>();
  auto o = out.accessor<double, 4>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < half; ++i) {
          const double angle = static_cast<double>(offset + s) * w[i];
          const double a = in[b][s][h][i], c = in[b][s][h][i + half];
          o[b][s][h][i] = a * std::cos(angle) - c * std::sin(angle);
          o[b][s][h][i + half] = c * std::cos(angle) + a * std::sin(angle);
        }
  return out;
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble).cpu() - b.to(at::kDouble).cpu()).abs().max().item<double>();
}

TEST(RopeScaling, InverseFrequenciesFollowThePublishedFormulas) {
  for (const std::string kind : {"none", "linear", "ntk", "yarn"}) {
    for (const int64_t r : {int64_t{128}, int64_t{64}, int64_t{32}, int64_t{8}}) {
      for (const double s : {2.0, 4.0, 8.0}) {
        const RopeScaling sc = kind == "none" ? RopeScaling{} : scaling(kind, s, 4096);
        const at::Tensor got = rope_inverse_frequencies(r, kTheta, sc);
        const std::vector<double> want = expected_frequencies(kind, r, s, 4096);
        ASSERT_EQ(got.numel(), r / 2);
        for (int64_t i = 0; i < r / 2; ++i) {
          EXPECT_NEAR(got[i].item<double>(), want[i], 1e-13 * want[i])
              << kind << " r " << r << " factor " << s << " pair " << i;
        }
      }
    }
  }
}

TEST(RopeScaling, YarnKeepsFastPairsInterpolatesSlowOnesAndBlendsBetween) {
  // r = 128, θ = 10⁴, L = 4096: pairs 0..low keep ω, pairs past high are ω / 4, and some pair
  // in between is strictly between the two (the ramp is not a step).
  const int64_t r = 128;
  const at::Tensor w = rope_inverse_frequencies(r, kTheta, scaling("yarn", 4.0, 4096));
  const at::Tensor plain = rope_inverse_frequencies(r, kTheta, {});
  const at::Tensor ratio = (plain / w);
  EXPECT_DOUBLE_EQ(ratio[0].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(ratio[r / 2 - 1].item<double>(), 4.0);
  int64_t blended = 0;
  for (int64_t i = 0; i < r / 2; ++i) {
    const double q = ratio[i].item<double>();
    EXPECT_GE(q, 1.0 - 1e-12);
    EXPECT_LE(q, 4.0 + 1e-12);
    if (i > 0) {
      EXPECT_GE(q, ratio[i - 1].item<double>() - 1e-12) << "not monotone at pair " << i;
    }
    if (q > 1.0 + 1e-9 && q < 4.0 - 1e-9) ++blended;
  }
  EXPECT_GT(blended, 3);
}

TEST(RopeScaling, YarnTemperatureIsPublishedAndOtherKindsHaveNone) {
  const double m = 0.1 * std::log(4.0) + 1.0;
  EXPECT_DOUBLE_EQ(scaling("yarn", 4.0, 4096).logit_multiplier(), m * m);
  EXPECT_DOUBLE_EQ(scaling("yarn", 1.0, 4096).logit_multiplier(), 1.0);
  EXPECT_DOUBLE_EQ(scaling("linear", 4.0, 4096).logit_multiplier(), 1.0);
  EXPECT_DOUBLE_EQ(scaling("ntk", 4.0, 0).logit_multiplier(), 1.0);
  EXPECT_DOUBLE_EQ(RopeScaling{}.logit_multiplier(), 1.0);
}

TEST(RopeScaling, PositionsBeyondTheOriginalLengthRotateByTheScaledAngles) {
  at::manual_seed(7);
  const int64_t original = 64, r = 32, D = 48;
  const at::Tensor x = at::randn({2, 40, 3, D}, at::kDouble);
  for (const std::string kind : {"linear", "ntk", "yarn"}) {
    const RopeScaling sc = scaling(kind, 4.0, original);
    const Rotary rope(r, kTheta, sc);
    const std::vector<double> w = expected_frequencies(kind, r, 4.0, original);
    // Tokens at 200 .. 239: past the original 64, inside the extended 256.
    for (const int64_t offset : {int64_t{0}, int64_t{200}}) {
      const at::Tensor y = rope.apply(x, offset);
      EXPECT_LT(max_abs_diff(y, rotate_reference(x, offset, w)), 1e-11)
          << kind << " offset " << offset;
      EXPECT_EQ(max_abs_diff(y.narrow(-1, r, D - r), x.narrow(-1, r, D - r)), 0.0);
    }
    // float32 tables: the same angles, rounded once.
    EXPECT_LT(max_abs_diff(rope.apply(x.to(at::kFloat), 200), rotate_reference(x, 200, w)), 2e-5)
        << kind;
    // And not the unscaled rotation.
    EXPECT_GT(max_abs_diff(rope.apply(x, 200), Rotary(r, kTheta).apply(x, 200)), 1e-3) << kind;
  }
}

// Per-token positions (documents with reset_positions, context parallelism's global positions)
// rotate by the scaled angles too, and `limit` lets them reach past the tensor's own length.
TEST(RopeScaling, PerTokenPositionsRotateByTheScaledAngles) {
  at::manual_seed(8);
  const int64_t original = 64, r = 32, D = 48;
  const at::Tensor x = at::randn({2, 40, 3, D}, at::kDouble);
  for (const std::string kind : {"linear", "ntk", "yarn"}) {
    const Rotary rope(r, kTheta, scaling(kind, 4.0, original));
    const std::vector<double> w = expected_frequencies(kind, r, 4.0, original);
    const at::Tensor from_0 = at::arange(40, at::kLong).expand({2, 40});
    EXPECT_LT(max_abs_diff(rope.apply(x, from_0), rotate_reference(x, 0, w)), 1e-11) << kind;
    const at::Tensor from_200 = at::arange(200, 240, at::kLong).expand({2, 40});
    EXPECT_LT(max_abs_diff(rope.apply(x, from_200, 240), rotate_reference(x, 200, w)), 1e-11)
        << kind;
  }
}

TEST(RopeScaling, EachScalingHasItsOwnCachedTable) {
  const at::Device cpu(at::kCPU);
  const RotaryTables plain = rotary_tables(cpu, at::kFloat, 10, 16, kTheta);
  const RotaryTables linear =
      rotary_tables(cpu, at::kFloat, 10, 16, kTheta, scaling("linear", 2, 0));
  const RotaryTables yarn = rotary_tables(cpu, at::kFloat, 10, 16, kTheta, scaling("yarn", 2, 128));
  const RotaryTables yarn_other =
      rotary_tables(cpu, at::kFloat, 10, 16, kTheta, scaling("yarn", 2, 256));
  EXPECT_NE(plain.cos.data_ptr(), linear.cos.data_ptr());
  EXPECT_NE(linear.cos.data_ptr(), yarn.cos.data_ptr());
  EXPECT_NE(yarn.cos.data_ptr(), yarn_other.cos.data_ptr());
  EXPECT_GT(max_abs_diff(plain.cos, linear.cos), 1e-3);
  EXPECT_EQ(rotary_tables(cpu, at::kFloat, 10, 16, kTheta, scaling("linear", 2, 0)).cos.data_ptr(),
            linear.cos.data_ptr());
}

TEST(RopeScaling, BadSettingsAreRefusedWithTheKeyAndWhatIsAllowed) {
  const auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] { scaling("dynamic", 2, 0); }).find("allowed: none, linear, ntk, yarn"),
            std::string::npos);
  EXPECT_NE(message([] { scaling("linear", 0.5, 0); }).find("attention.rope_scaling_factor"),
            std::string::npos);
  EXPECT_NE(message([] { scaling("yarn", 4, 0); }).find("attention.rope_original_max_seq_len"),
            std::string::npos);
  EXPECT_NE(message([] {
              Rotary(2, kTheta, scaling("ntk", 4, 0)).apply(at::zeros({1, 1, 1, 2}), 0);
            }).find("more than 2 rotary dims"),
            std::string::npos);
}

// The fused kernel reads the same scaled tables: it must match the CPU path far past the
// original length, forward and backward.
TEST(RopeScalingCuda, FusedKernelRotatesByTheScaledAngles) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: fused RoPE not exercised";
  at::manual_seed(8);
  const at::Tensor x = at::randn({1, 33, 4, 128});
  for (const std::string kind : {"linear", "ntk", "yarn"}) {
    const Rotary rope(64, kTheta, scaling(kind, 8.0, 4096));
    for (const int64_t offset : {int64_t{0}, int64_t{30000}}) {
      const at::Tensor y = rope.apply(x.to(at::kCUDA), offset);
      EXPECT_LT(max_abs_diff(y, rope.apply(x, offset)), 5e-6) << kind << " offset " << offset;
      EXPECT_LT(
          max_abs_diff(y, rotate_reference(x, offset, expected_frequencies(kind, 64, 8.0, 4096))),
          5e-5)
          << kind << " offset " << offset;
    }
  }
}

}  // namespace
}  // namespace cca
