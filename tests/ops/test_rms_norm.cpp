// RMSNorm against a float64 reference written out here: the plain path everywhere, and on CUDA
// the fused kernels (fp32 residual in, autocast's dtype out) forward and backward, including
// the weight gradient's fixed-order reduction (skipped without a GPU).
#include <gtest/gtest.h>
#include <torch/autograd.h>

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
  // Row widths: tiny, odd, the model widths, the 256/1024-thread boundary, the widest taken.
  // Row counts: one row, fewer rows than blocks, many rows per block.
  const std::vector<std::vector<int64_t>> shapes = {{1, 1, 768},    {2, 5, 1},      {3, 37},
                                                    {4, 1024, 768}, {2, 300, 2048}, {7, 4096},
                                                    {5, 4097},      {3, 16384},     {33000, 64}};
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

TEST(RmsNormCuda, OtherInputsTakeThePlainPath) {
  REQUIRE_GPU();
  at::manual_seed(3);
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  // Half-precision input, a strided view, rows wider than the kernels take, float64.
  const at::Tensor w64 = at::ones({64}, cuda);
  const at::Tensor half_x = at::randn({4, 64}, cuda).to(at::kBFloat16);
  EXPECT_FALSE(is_fused(run_norm(half_x, w64.to(at::kBFloat16), at::randn({4, 64}, cuda))));
  const at::Tensor strided = at::randn({64, 4}, cuda).t();
  const at::Tensor grad = at::randn({4, 64}, cuda);
  const NormRun s = run_norm(strided, w64, grad);
  EXPECT_FALSE(is_fused(s));
  expect_matches(s, reference(strided, w64, grad), at::kFloat, "strided");
  const at::Tensor wide = at::randn({2, 16385}, cuda);
  EXPECT_FALSE(is_fused(run_norm(wide, at::ones({16385}, cuda), at::randn({2, 16385}, cuda))));
  const at::Tensor xd = at::randn({3, 64}, cuda.dtype(at::kDouble));
  const at::Tensor gd = at::randn({3, 64}, cuda.dtype(at::kDouble));
  const NormRun d = run_norm(xd, w64.to(at::kDouble), gd);
  EXPECT_FALSE(is_fused(d));
  expect_matches(d, reference(xd, w64, gd), at::kDouble, "float64");
}

}  // namespace
}  // namespace cca
