// Rotary embedding against a float64 reference written out here: the cached tables, the CPU
// plain-ops path, and on CUDA the fused kernel forward and backward (skipped without a GPU).
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <cmath>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "ops/device.h"
#include "ops/rope.h"

namespace cca {
namespace {

constexpr double kTheta = 10000.0;

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  if (a.numel() == 0) return 0.0;
  return (a.to(at::kDouble).cpu() - b.to(at::kDouble).cpu()).abs().max().item<double>();
}

// y = R(x) in float64 from the definition: pair (i, i + r/2) of token s rotates by
// (offset + s)·θ^{-2i/r}; dims from r on pass through. inverse rotates by the negative angle
// (what the backward applies to the output gradient).
at::Tensor reference(const at::Tensor& x, int64_t offset, int64_t r, bool inverse = false) {
  const at::Tensor xd = x.to(at::kDouble).cpu();
  const int64_t S = x.size(1), half = r / 2;
  std::vector<double> cos_v(S * half), sin_v(S * half);
  for (int64_t s = 0; s < S; ++s) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle = double(offset + s) * std::pow(kTheta, -2.0 * double(i) / double(r));
      cos_v[s * half + i] = std::cos(angle);
      sin_v[s * half + i] = (inverse ? -1.0 : 1.0) * std::sin(angle);
    }
  }
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor c = at::tensor(cos_v, f64).view({1, S, 1, half});
  const at::Tensor sn = at::tensor(sin_v, f64).view({1, S, 1, half});
  const at::Tensor a = xd.narrow(-1, 0, half), b = xd.narrow(-1, half, half);
  return at::cat({a * c - b * sn, b * c + a * sn, xd.narrow(-1, r, x.size(-1) - r)}, -1);
}

// Tolerance for one rounding to `t` of values of magnitude up to ~5 (randn inputs).
double tolerance(at::ScalarType t) {
  if (t == at::kBFloat16) return 4e-2;
  if (t == at::kHalf) return 5e-3;
  if (t == at::kFloat) return 5e-6;
  return 1e-12;
}

TEST(RotaryCpu, MatchesFloat64DefinitionInEveryDtype) {
  at::manual_seed(0);
  for (const at::ScalarType t : {at::kDouble, at::kFloat, at::kBFloat16, at::kHalf}) {
    for (const int64_t r : {int64_t{64}, int64_t{32}, int64_t{8}}) {
      const at::Tensor x = at::randn({2, 37, 3, 64}).to(t);
      const at::Tensor y = Rotary(r, kTheta).apply(x, 11);
      EXPECT_EQ(y.scalar_type(), t);
      EXPECT_LT(max_abs_diff(y, reference(x, 11, r)), tolerance(t)) << t << " r " << r;
      // Dims past r are copied bit for bit.
      EXPECT_EQ(max_abs_diff(y.narrow(-1, r, 64 - r), x.narrow(-1, r, 64 - r)), 0.0);
    }
  }
}

TEST(RotaryCpu, OffsetsSliceTheSameAnglesAndStridesDoNotMatter) {
  at::manual_seed(1);
  const Rotary rope(32, kTheta);
  const at::Tensor x = at::randn({2, 50, 4, 48});
  const at::Tensor whole = rope.apply(x, 0);
  // Same table rows whether the tokens come in one call or later at an offset: bit-identical.
  EXPECT_EQ(max_abs_diff(rope.apply(x.narrow(1, 17, 33), 17), whole.narrow(1, 17, 33)), 0.0);
  // A transposed view and a narrowed view give the contiguous input's result.
  const at::Tensor t = x.transpose(1, 2).contiguous().transpose(1, 2);
  EXPECT_EQ(max_abs_diff(rope.apply(t, 0), whole), 0.0);
  const at::Tensor wide = at::cat({at::randn({2, 50, 4, 16}), x}, -1);
  EXPECT_EQ(max_abs_diff(rope.apply(wide.narrow(-1, 16, 48), 0), whole), 0.0);
}

TEST(RotaryCpu, TablesAreComputedOnceAndGrowWithoutChangingRows) {
  const at::Device cpu(at::kCPU);
  const RotaryTables a = rotary_tables(cpu, at::kFloat, 100, 24, 500.0);
  const RotaryTables b = rotary_tables(cpu, at::kFloat, 3000, 24, 500.0);
  EXPECT_EQ(a.cos.data_ptr(), b.cos.data_ptr());  // cached, not recomputed
  EXPECT_EQ(a.cos.scalar_type(), at::kFloat);
  EXPECT_EQ(a.cos.size(1), 12);
  const RotaryTables big = rotary_tables(cpu, at::kFloat, 10000, 24, 500.0);
  EXPECT_GE(big.cos.size(0), 10000);
  EXPECT_EQ(max_abs_diff(big.sin.narrow(0, 0, a.sin.size(0)), a.sin), 0.0);
  // Other keys get their own tables; float64 inputs keep float64 angles.
  EXPECT_NE(rotary_tables(cpu, at::kDouble, 100, 24, 500.0).cos.data_ptr(), big.cos.data_ptr());
  EXPECT_EQ(rotary_tables(cpu, at::kDouble, 100, 24, 500.0).cos.scalar_type(), at::kDouble);
}

TEST(RotaryCpu, BackwardIsTheInverseRotation) {
  at::manual_seed(2);
  const at::Tensor x = at::randn({2, 9, 3, 16}, at::kDouble).requires_grad_(true);
  const at::Tensor g = at::randn({2, 9, 3, 16}, at::kDouble);
  const at::Tensor y = Rotary(8, kTheta).apply(x, 4);
  const at::Tensor grad = torch::autograd::grad({y}, {x}, {g})[0];
  EXPECT_LT(max_abs_diff(grad, reference(g, 4, 8, /*inverse=*/true)), 1e-12);
}

// ---- CUDA: fused kernel vs the CPU path and the float64 definition --------------------------

#define REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: fused RoPE not exercised"

// One layout the layers hand to Rotary::apply, built on the GPU from a base tensor.
struct Layout {
  std::string name;
  std::vector<int64_t> base;  // allocated shape
  // base -> the [B, S, H, D] view that is rotated
  std::function<at::Tensor(const at::Tensor&)> view;
};

std::vector<Layout> layouts() {
  using T = const at::Tensor&;
  return {
      {"contiguous", {2, 33, 4, 128}, [](T b) { return b; }},
      {"odd length", {3, 1, 2, 64}, [](T b) { return b; }},
      {"long odd", {1, 1001, 3, 64}, [](T b) { return b; }},
      {"BHSD transposed", {2, 4, 45, 64}, [](T b) { return b.transpose(1, 2); }},
      {"MLA q_rope narrow", {2, 19, 4, 192}, [](T b) { return b.narrow(-1, 128, 64); }},
      {"MLA shared key", {2, 19, 96}, [](T b) { return b.narrow(-1, 64, 32).unsqueeze(2); }},
      {"misaligned rows", {2, 7, 3, 65}, [](T b) { return b.narrow(-1, 1, 64); }},
      {"strided last dim", {2, 11, 64, 3}, [](T b) { return b.transpose(2, 3); }},
  };
}

TEST(RotaryCuda, FusedForwardAndBackwardMatchCpuAndFloat64) {
  REQUIRE_GPU();
  at::manual_seed(3);
  for (const at::ScalarType t : {at::kBFloat16, at::kHalf, at::kFloat}) {
    for (const Layout& layout : layouts()) {
      const at::Tensor base_cpu = at::randn(layout.base).to(t);
      const int64_t D = layout.view(base_cpu).size(3);
      for (const int64_t r : {D, D / 2}) {
        for (const int64_t offset : {int64_t{0}, int64_t{5}, int64_t{4097}}) {
          const std::string what = layout.name + " " + std::string(c10::toString(t)) + " r " +
                                   std::to_string(r) + " offset " + std::to_string(offset);
          const Rotary rope(r, kTheta);
          const at::Tensor base = base_cpu.to(at::kCUDA).requires_grad_(true);
          const at::Tensor x = layout.view(base);
          const at::Tensor y = rope.apply(x, offset);
          ASSERT_TRUE(y.is_cuda()) << what;
          EXPECT_TRUE(y.is_contiguous()) << what;
          EXPECT_EQ(y.scalar_type(), t) << what;
          const at::Tensor x_cpu = layout.view(base_cpu);
          // Same tables and the same roundings as the plain-ops CPU path: expected bit-identical.
          const double vs_cpu = max_abs_diff(y, rope.apply(x_cpu, offset));
          if (vs_cpu != 0.0)
            std::cout << what << ": differs from the CPU path by " << vs_cpu << "\n";
          EXPECT_LT(vs_cpu, tolerance(t)) << what;
          EXPECT_LT(max_abs_diff(y, reference(x_cpu, offset, r)), tolerance(t)) << what;
          // Backward: the gradient lands in the base through the view.
          const at::Tensor g = at::randn(y.sizes()).to(t);
          const at::Tensor grad = torch::autograd::grad({y}, {base}, {g.to(at::kCUDA)})[0];
          at::Tensor want = at::zeros(layout.base, at::kDouble);
          layout.view(want).copy_(reference(g, offset, r, /*inverse=*/true));
          EXPECT_LT(max_abs_diff(grad, want), tolerance(t)) << what << " (backward)";
        }
      }
    }
  }
}

TEST(RotaryCuda, NoGradFloat64AndEmptyInputs) {
  REQUIRE_GPU();
  at::manual_seed(4);
  const Rotary rope(16, kTheta);
  {
    const at::NoGradGuard no_grad;
    const at::Tensor x = at::randn({1, 5, 2, 32}, at::TensorOptions().device(at::kCUDA));
    EXPECT_LT(max_abs_diff(rope.apply(x, 3), reference(x, 3, 16)), tolerance(at::kFloat));
  }
  // float64 on the GPU keeps float64 angles through the plain-ops path.
  const at::Tensor xd = at::randn({1, 5, 2, 32}, at::kDouble);
  EXPECT_LT(max_abs_diff(rope.apply(xd.to(at::kCUDA), 3), reference(xd, 3, 16)), 1e-12);
  const at::Tensor empty = at::empty({0, 4, 2, 32}, at::TensorOptions().device(at::kCUDA));
  EXPECT_EQ(rope.apply(empty, 0).numel(), 0);
}

// S = 131,072 tokens of 64 heads × 256 dims: 2^31 elements, past a 32-bit index. Every slice of
// the whole-sequence result (and of its gradient) equals the same slice rotated on its own at its
// offset, bit for bit.
TEST(RotaryCuda, LongSequencePastA32BitIndexMatchesSlicesRotatedAlone) {
  REQUIRE_GPU();
  const int64_t S = 131072, H = 64, D = 256;
  const auto bf16 = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
  at::manual_seed(6);
  const at::Tensor x = at::randn({1, S, H, D}, bf16).requires_grad_(true);
  const at::Tensor g = at::randn({1, S, H, D}, bf16);
  const Rotary rope(D / 2, kTheta);
  const at::Tensor y = rope.apply(x, 0);
  const at::Tensor grad = torch::autograd::grad({y}, {x}, {g})[0];
  for (const int64_t start : {int64_t{0}, S / 2 + 3, S - 16}) {
    const at::Tensor piece = x.detach().narrow(1, start, 16).requires_grad_(true);
    const at::Tensor alone = rope.apply(piece, start);
    EXPECT_TRUE(at::equal(y.narrow(1, start, 16), alone)) << "forward at " << start;
    const at::Tensor piece_grad =
        torch::autograd::grad({alone}, {piece}, {g.narrow(1, start, 16)})[0];
    EXPECT_TRUE(at::equal(grad.narrow(1, start, 16), piece_grad)) << "backward at " << start;
  }
}

}  // namespace
}  // namespace cca
