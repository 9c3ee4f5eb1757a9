// RMSNorm against a float64 reference written out here: the plain path everywhere, and on CUDA
// the fused kernels (fp32 residual in, autocast's dtype out) forward and backward, including
// the weight gradient's fixed-order reduction (skipped without a GPU).
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <algorithm>
#include <string>
#include <vector>

#include "ops/device.h"
#include "ops/norm.h"
#include "testing/cuda_autocast.h"
#include "testing/tolerance.h"

namespace cca {
namespace {

using testing::error_of_sum;
using testing::rounding_tolerance;
using testing::worst_error;

constexpr double kEps = 1e-5;

struct Reference {
  at::Tensor out, grad_x, grad_weight;
};

// y = x / sqrt(mean(x²) + eps) · w; with x̂ = x·r and g = dy·w:
// dx = r·(g − x̂·mean(g·x̂)), dw = Σ_rows dy·x̂.
Reference reference(const at::Tensor& x, const at::Tensor& w, const at::Tensor& grad) {
  const int64_t E = x.size(-1);
  const at::Tensor xd = x.to(at::kDouble).cpu().reshape({-1, E});
  const at::Tensor wd = w.to(at::kDouble).cpu();
  const at::Tensor dy = grad.to(at::kDouble).cpu().reshape({-1, E});
  const at::Tensor r = at::rsqrt(xd.pow(2).mean(-1, true) + kEps);
  const at::Tensor normed = xd * r, g = dy * wd;
  const at::Tensor dx = r * (g - normed * (g * normed).mean(-1, true));
  return {(normed * wd).view(x.sizes()), dx.view(x.sizes()), (dy * normed).sum(0)};
}

struct NormRun {
  at::Tensor out, grad_x, grad_weight;
  std::string node;  // the output's autograd node
};

NormRun run_norm(const at::Tensor& x_in, const at::Tensor& w_in, const at::Tensor& grad) {
  RMSNormImpl norm(x_in.size(-1), kEps);
  norm.weight.set_data(w_in.clone());
  const at::Tensor x = x_in.detach().requires_grad_(true);
  const at::Tensor y = norm.forward(x);
  const auto grads = torch::autograd::grad({y}, {x, norm.weight}, {grad.to(y.scalar_type())});
  return {y, grads[0], grads[1], y.grad_fn() ? y.grad_fn()->name() : ""};
}

void expect_matches(const NormRun& run, const Reference& want, at::ScalarType out,
                    const std::string& what) {
  EXPECT_EQ(run.out.scalar_type(), out) << what;
  EXPECT_LT(worst_error(run.out, want.out), rounding_tolerance(out)) << what << " (forward)";
  EXPECT_LT(worst_error(run.grad_x, want.grad_x), 1e-4) << what << " (grad x)";
  EXPECT_LT(error_of_sum(run.grad_weight, want.grad_weight), 1e-5) << what << " (grad weight)";
}

TEST(RmsNormCpu, MatchesFloat64DefinitionForwardAndBackward) {
  at::manual_seed(0);
  for (const at::ScalarType t : {at::kDouble, at::kFloat}) {
    const at::Tensor x = at::randn({3, 9, 40}).to(t), w = (1 + 0.3 * at::randn({40})).to(t);
    const at::Tensor grad = at::randn({3, 9, 40}).to(t);
    expect_matches(run_norm(x, w, grad), reference(x, w, grad), t, c10::toString(t));
  }
}

// ---- CUDA: fused kernels ---------------------------------------------------------------------

#define REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: fused RMSNorm not exercised"

bool is_fused(const NormRun& run) {
  return run.node.find("RmsNormFromResidual") != std::string::npos;
}

// fp32 output without autocast, bf16/fp16 under autocast in that dtype.
NormRun run_cuda(const at::Tensor& x, const at::Tensor& w, const at::Tensor& grad,
                 at::ScalarType out) {
  if (out == at::kFloat) return run_norm(x, w, grad);
  const testing::CudaAutocast autocast(out);
  return run_norm(x, w, grad);
}

TEST(RmsNormCuda, FusedMatchesFloat64InEveryOutputDtype) {
  REQUIRE_GPU();
  at::manual_seed(1);
  // Row widths: tiny and odd (single elements a lane), the model widths, the widest a warp takes
  // and just past it, the 8/32-warp block boundary, the widest held in registers and past it
  // (rows swept in segments). Row counts: one row, fewer rows than blocks, many rows per block.
  const std::vector<std::vector<int64_t>> shapes = {
      {1, 1, 768},    {2, 5, 1},      {3, 3},     {4, 7},      {3, 37},     {6, 100},    {3, 770},
      {4, 1024, 768}, {2, 300, 2048}, {5, 2050},  {7, 4096},   {5, 4097},   {3, 8192},   {2, 12288},
      {3, 16384},     {2, 16385},     {2, 40000}, {33000, 64}, {700, 4100}, {600, 16388}};
  for (const at::ScalarType out : {at::kBFloat16, at::kHalf, at::kFloat}) {
    for (const auto& shape : shapes) {
      const std::string what =
          std::string(c10::toString(out)) + " " + c10::str(at::IntArrayRef(shape));
      const int64_t E = shape.back();
      const at::Tensor x = (at::randn(shape) * 2).to(at::kCUDA);
      const at::Tensor w = (1 + 0.3 * at::randn({E})).to(at::kCUDA);
      const at::Tensor grad = at::randn(shape).to(out).to(at::kCUDA);
      const NormRun run = run_cuda(x, w, grad, out);
      EXPECT_TRUE(is_fused(run)) << what << ": ran " << run.node;
      EXPECT_EQ(run.grad_x.scalar_type(), at::kFloat) << what;
      expect_matches(run, reference(x, w, grad), out, what);
    }
  }
}

TEST(RmsNormCuda, FusedAgreesWithLibTorchAndIsReproducible) {
  REQUIRE_GPU();
  at::manual_seed(2);
  const at::Tensor x = at::randn({8, 512, 768}).to(at::kCUDA);
  const at::Tensor w = (1 + 0.3 * at::randn({768})).to(at::kCUDA);
  const at::Tensor grad = at::randn({8, 512, 768}).to(at::kCUDA);
  const NormRun a = run_cuda(x, w, grad, at::kFloat), b = run_cuda(x, w, grad, at::kFloat);
  ASSERT_TRUE(is_fused(a));
  // Fixed-order reductions: the same bits twice.
  EXPECT_TRUE(at::equal(a.out, b.out));
  EXPECT_TRUE(at::equal(a.grad_x, b.grad_x));
  EXPECT_TRUE(at::equal(a.grad_weight, b.grad_weight));
  // LibTorch's own rms_norm on the same input.
  const at::Tensor xr = x.detach().requires_grad_(true), wr = w.detach().requires_grad_(true);
  const at::Tensor yr = at::rms_norm(xr, {768}, wr, kEps);
  const auto grads = torch::autograd::grad({yr}, {xr, wr}, {grad});
  EXPECT_LT(worst_error(a.out, yr), 1e-5);
  EXPECT_LT(worst_error(a.grad_x, grads[0]), 1e-4);
  EXPECT_LT(error_of_sum(a.grad_weight, grads[1]), 1e-5);
}

// The same bits twice at every kind of width: warp rows (packs of 4 and single elements), block
// rows held in registers, and rows swept in segments; many rows per block.
TEST(RmsNormCuda, FusedIsReproducibleAtEveryWidth) {
  REQUIRE_GPU();
  at::manual_seed(4);
  for (const int64_t E : {1, 3, 7, 100, 2048, 2050, 4096, 8192, 12288, 16385}) {
    for (const at::ScalarType out : {at::kBFloat16, at::kFloat}) {
      const std::string what = std::string(c10::toString(out)) + " E = " + std::to_string(E);
      const int64_t M = std::max<int64_t>(2000, 2'000'000 / E);
      const auto cuda = at::TensorOptions().device(at::kCUDA);
      const at::Tensor x = at::randn({M, E}, cuda) * 2, w = 1 + 0.3 * at::randn({E}, cuda);
      const at::Tensor grad = at::randn({M, E}, cuda).to(out);
      const NormRun a = run_cuda(x, w, grad, out), b = run_cuda(x, w, grad, out);
      ASSERT_TRUE(is_fused(a)) << what;
      EXPECT_TRUE(at::equal(a.out, b.out)) << what;
      EXPECT_TRUE(at::equal(a.grad_x, b.grad_x)) << what;
      EXPECT_TRUE(at::equal(a.grad_weight, b.grad_weight)) << what;
    }
  }
}

// Rows starting off a 16-byte boundary (a view at an odd offset) are copied to aligned memory
// before the packed kernels read them; single-element rows need no copy.
TEST(RmsNormCuda, FusedTakesRowsAtAnyAlignment) {
  REQUIRE_GPU();
  at::manual_seed(5);
  for (const int64_t E : {7, 64, 4096}) {
    const std::string what = "E = " + std::to_string(E);
    const at::Tensor x = at::randn({3 * E + 1}).to(at::kCUDA).narrow(0, 1, 3 * E).view({3, E});
    const at::Tensor w = (1 + 0.3 * at::randn({E})).to(at::kCUDA);
    const at::Tensor grad = at::randn({3, E}).to(at::kCUDA);
    const NormRun run = run_cuda(x, w, grad, at::kBFloat16);
    EXPECT_TRUE(is_fused(run)) << what;
    expect_matches(run, reference(x, w, grad), at::kBFloat16, what);
  }
}

TEST(RmsNormCuda, OtherInputsTakeThePlainPath) {
  REQUIRE_GPU();
  at::manual_seed(3);
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  // Half-precision input, a strided view, float64.
  const at::Tensor w64 = at::ones({64}, cuda);
  const at::Tensor half_x = at::randn({4, 64}, cuda).to(at::kBFloat16);
  EXPECT_FALSE(is_fused(run_norm(half_x, w64.to(at::kBFloat16), at::randn({4, 64}, cuda))));
  const at::Tensor strided = at::randn({64, 4}, cuda).t();
  const at::Tensor grad = at::randn({4, 64}, cuda);
  const NormRun s = run_norm(strided, w64, grad);
  EXPECT_FALSE(is_fused(s));
  expect_matches(s, reference(strided, w64, grad), at::kFloat, "strided");
  const at::Tensor xd = at::randn({3, 64}, cuda.dtype(at::kDouble));
  const at::Tensor gd = at::randn({3, 64}, cuda.dtype(at::kDouble));
  const NormRun d = run_norm(xd, w64.to(at::kDouble), gd);
  EXPECT_FALSE(is_fused(d));
  expect_matches(d, reference(xd, w64, gd), at::kDouble, "float64");
}

}  // namespace
}  // namespace cca
