// The residual add fused with the RMSNorm after it (RMSNormImpl::forward_add) against a float64
// reference: the plain path everywhere, the CUDA kernels forward and backward (skipped without
// a GPU), with and without other uses of the sum.
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
  at::Tensor sum, normed, grad_residual, grad_delta, grad_weight;
};

// h = r + d, y = h·rstd·w; the loss is Σ y·gy + Σ h·gh (gh: the sum's other uses, may be
// undefined). dh = rstd·(g − ĥ·mean(g·ĥ)) + gh with g = gy·w; dr = dd = dh; dw = Σ gy·ĥ.
Reference reference(const at::Tensor& r, const at::Tensor& d, const at::Tensor& w,
                    const at::Tensor& gy, const at::Tensor& gh) {
  const int64_t E = r.size(-1);
  const auto f64 = [](const at::Tensor& t) { return t.to(at::kDouble).cpu(); };
  const at::Tensor h = (f64(r) + f64(d)).reshape({-1, E});
  const at::Tensor dy = f64(gy).reshape({-1, E}), wd = f64(w);
  const at::Tensor rstd = at::rsqrt(h.pow(2).mean(-1, true) + kEps);
  const at::Tensor normed = h * rstd, g = dy * wd;
  at::Tensor dh = rstd * (g - normed * (g * normed).mean(-1, true));
  if (gh.defined()) dh = dh + f64(gh).reshape({-1, E});
  return {h.view(r.sizes()), (normed * wd).view(r.sizes()), dh.view(r.sizes()), dh.view(r.sizes()),
          (dy * normed).sum(0)};
}

struct Outcome {
  at::Tensor sum, normed, grad_residual, grad_delta, grad_weight;
  std::string node;
};

// Runs forward_add and differentiates Σ normed·gy (+ Σ sum·gh when gh is defined).
Outcome run_add(const at::Tensor& residual_in, const at::Tensor& delta_in, const at::Tensor& w,
                const at::Tensor& gy, const at::Tensor& gh) {
  RMSNormImpl norm(residual_in.size(-1), kEps);
  norm.weight.set_data(w.clone());
  const at::Tensor residual = residual_in.detach().requires_grad_(true);
  const at::Tensor delta = delta_in.detach().requires_grad_(true);
  const NormedSum out = norm.forward_add(residual, delta);
  at::Tensor loss = (out.normed.to(at::kDouble) * gy.to(at::kDouble)).sum();
  if (gh.defined()) loss = loss + (out.sum.to(at::kDouble) * gh.to(at::kDouble)).sum();
  const auto grads = torch::autograd::grad({loss}, {residual, delta, norm.weight});
  return {out.sum,  out.normed, grads[0],
          grads[1], grads[2],   out.normed.grad_fn() ? out.normed.grad_fn()->name() : ""};
}

void expect_matches(const Outcome& got, const Reference& want, at::ScalarType out,
                    const std::string& what) {
  EXPECT_EQ(got.normed.scalar_type(), out) << what;
  EXPECT_LT(worst_error(got.sum, want.sum), 1e-6) << what << " (sum)";
  EXPECT_LT(worst_error(got.normed, want.normed), rounding_tolerance(out)) << what << " (normed)";
  EXPECT_LT(worst_error(got.grad_residual, want.grad_residual), 1e-4) << what << " (grad r)";
  EXPECT_LT(worst_error(got.grad_delta, want.grad_delta), rounding_tolerance(out))
      << what << " (grad d)";
  EXPECT_LT(error_of_sum(got.grad_weight, want.grad_weight), 1e-5) << what << " (grad w)";
}

TEST(AddRmsNormCpu, EqualsTheAddThenTheNorm) {
  at::manual_seed(0);
  for (const at::ScalarType t : {at::kDouble, at::kFloat}) {
    const at::Tensor r = at::randn({3, 5, 24}).to(t), d = at::randn({3, 5, 24}).to(t);
    const at::Tensor w = (1 + 0.3 * at::randn({24})).to(t);
    const at::Tensor gy = at::randn({3, 5, 24}), gh = at::randn({3, 5, 24});
    for (const bool other_uses : {false, true}) {
      const at::Tensor through = other_uses ? gh : at::Tensor();
      expect_matches(run_add(r, d, w, gy, through), reference(r, d, w, gy, through), t,
                     std::string(c10::toString(t)) + (other_uses ? " with" : " without"));
    }
  }
}

// ---- CUDA ------------------------------------------------------------------------------------

#define REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: fused add+RMSNorm not exercised"

Outcome run_cuda(const at::Tensor& r, const at::Tensor& d, const at::Tensor& w,
                 const at::Tensor& gy, const at::Tensor& gh, at::ScalarType out) {
  if (out == at::kFloat) return run_add(r, d, w, gy, gh);
  const testing::CudaAutocast autocast(out);
  return run_add(r, d, w, gy, gh);
}

bool is_fused(const Outcome& o) {
  return o.node.find("AddRmsNorm") != std::string::npos;
}

TEST(AddRmsNormCuda, FusedMatchesFloat64) {
  REQUIRE_GPU();
  at::manual_seed(1);
  // Widths: the smallest, not a multiple of 128, each chunk count (2, 4, 8, 16) and its edge.
  // Rows: one, fewer than a block's warps, many rows per warp.
  const std::vector<std::vector<int64_t>> shapes = {
      {1, 4},    {3, 7, 100}, {2, 9, 256}, {5, 260},  {4, 512},    {2, 3, 768},
      {6, 1000}, {3, 1024},   {7, 1028},   {2, 2048}, {20000, 64}, {4, 512, 768}};
  for (const at::ScalarType out : {at::kBFloat16, at::kHalf, at::kFloat}) {
    for (const auto& shape : shapes) {
      for (const bool other_uses : {false, true}) {
        const std::string what = std::string(c10::toString(out)) + " " +
                                 c10::str(at::IntArrayRef(shape)) +
                                 (other_uses ? " with other uses" : "");
        const auto cuda = at::TensorOptions().device(at::kCUDA);
        const at::Tensor r = at::randn(shape, cuda) * 2;
        const at::Tensor d = at::randn(shape, cuda).to(out);
        const at::Tensor w = 1 + 0.3 * at::randn({shape.back()}, cuda);
        const at::Tensor gy = at::randn(shape, cuda).to(out);
        const at::Tensor gh = other_uses ? at::randn(shape, cuda) : at::Tensor();
        const Outcome got = run_cuda(r, d, w, gy, gh, out);
        EXPECT_TRUE(is_fused(got)) << what << ": ran " << got.node;
        EXPECT_EQ(got.grad_delta.scalar_type(), out) << what;
        EXPECT_EQ(got.grad_residual.scalar_type(), at::kFloat) << what;
        expect_matches(got, reference(r, d, w, gy, gh), out, what);
      }
    }
  }
}

TEST(AddRmsNormCuda, WeightGradientIsReproducible) {
  REQUIRE_GPU();
  at::manual_seed(2);
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  const at::Tensor r = at::randn({16, 1024, 768}, cuda), d = at::randn({16, 1024, 768}, cuda);
  const at::Tensor w = 1 + 0.3 * at::randn({768}, cuda), gy = at::randn({16, 1024, 768}, cuda);
  const Outcome a = run_cuda(r, d, w, gy, at::Tensor(), at::kFloat);
  const Outcome b = run_cuda(r, d, w, gy, at::Tensor(), at::kFloat);
  ASSERT_TRUE(is_fused(a));
  EXPECT_TRUE(at::equal(a.grad_weight, b.grad_weight));
  EXPECT_TRUE(at::equal(a.grad_residual, b.grad_residual));
}

TEST(AddRmsNormCuda, OtherShapesAndDtypesTakeThePlainPath) {
  REQUIRE_GPU();
  at::manual_seed(3);
  const auto cuda = at::TensorOptions().device(at::kCUDA);
  const auto check_plain = [&](const at::Tensor& r, const at::Tensor& d, at::ScalarType out,
                               const std::string& what) {
    const at::Tensor w = 1 + 0.3 * at::randn({r.size(-1)}, cuda);
    const at::Tensor gy = at::randn(r.sizes(), cuda).to(out);
    const Outcome got = run_cuda(r, d, w, gy, at::Tensor(), out);
    EXPECT_FALSE(is_fused(got)) << what;
    expect_matches(got, reference(r, d, w, gy, at::Tensor()), out, what);
  };
  check_plain(at::randn({3, 770}, cuda), at::randn({3, 770}, cuda), at::kFloat, "E % 4 != 0");
  check_plain(at::randn({3, 2052}, cuda), at::randn({3, 2052}, cuda), at::kFloat, "E > 2048");
  // An fp32 delta under bf16 autocast: the kernels take delta in the output's dtype only.
  check_plain(at::randn({3, 64}, cuda), at::randn({3, 64}, cuda), at::kBFloat16,
              "fp32 delta, bf16 out");
}

}  // namespace
}  // namespace cca
