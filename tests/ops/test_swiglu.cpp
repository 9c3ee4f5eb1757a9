// SwiGLU's product silu(gate)·up against a float64 reference written out here: the plain-ops
// path everywhere, and on CUDA the fused kernels forward and backward (skipped without a GPU).
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <string>
#include <vector>

#include "ops/device.h"
#include "ops/swiglu.h"
#include "testing/tolerance.h"

namespace cca {
namespace {

using testing::rounding_tolerance;
using testing::worst_error;

struct Reference {
  at::Tensor out, grad_gate, grad_up;
};

// From the definition, in float64: silu(g) = g·σ(g), d silu/dg = σ(g)·(1 + g·(1 − σ(g))).
Reference reference(const at::Tensor& gate, const at::Tensor& up, const at::Tensor& grad) {
  const at::Tensor g = gate.to(at::kDouble).cpu(), u = up.to(at::kDouble).cpu();
  const at::Tensor d = grad.to(at::kDouble).cpu();
  const at::Tensor s = 1.0 / (1.0 + at::exp(-g));
  return {g * s * u, d * u * s * (1.0 + g * (1.0 - s)), d * g * s};
}

void expect_matches(const at::Tensor& gate, const at::Tensor& up, at::ScalarType t,
                    const std::string& what) {
  const at::Tensor g = gate.detach().requires_grad_(true);
  const at::Tensor u = up.detach().requires_grad_(true);
  const at::Tensor y = swiglu_product(g, u);
  EXPECT_EQ(y.scalar_type(), t) << what;
  EXPECT_EQ(y.sizes(), gate.sizes()) << what;
  const at::Tensor grad = at::randn(y.sizes(), at::kFloat).to(t).to(y.device());
  const auto grads = torch::autograd::grad({y}, {g, u}, {grad});
  const Reference want = reference(gate, up, grad);
  const double tol = rounding_tolerance(t);
  EXPECT_LT(worst_error(y, want.out), tol) << what << " (forward)";
  EXPECT_LT(worst_error(grads[0], want.grad_gate), tol) << what << " (grad gate)";
  EXPECT_LT(worst_error(grads[1], want.grad_up), tol) << what << " (grad up)";
}

at::Tensor scaled_randn(const std::vector<int64_t>& shape, at::ScalarType t, double scale) {
  return (at::randn(shape, at::kFloat) * scale).to(t);
}

TEST(SwiGluCpu, MatchesFloat64DefinitionForwardAndBackward) {
  at::manual_seed(0);
  for (const at::ScalarType t : {at::kDouble, at::kFloat, at::kBFloat16}) {
    const at::Tensor gate = scaled_randn({3, 17, 40}, t, 3.0);
    expect_matches(gate, scaled_randn({3, 17, 40}, t, 1.0), t, c10::toString(t));
  }
}

// ---- CUDA: fused kernels vs the float64 definition ------------------------------------------

#define REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: fused SwiGLU not exercised"

bool ran_fused(const at::Tensor& y) {
  return y.grad_fn() && y.grad_fn()->name().find("FusedSwiGlu") != std::string::npos;
}

TEST(SwiGluCuda, FusedForwardAndBackwardMatchFloat64) {
  REQUIRE_GPU();
  at::manual_seed(1);
  // 16-byte packs (sizes divisible by 8), the scalar path (odd sizes), a single element, and
  // the FFN shape of the GPT-2-class model.
  const std::vector<std::vector<int64_t>> shapes = {
      {4, 64, 256}, {3, 7, 13}, {1, 1, 1}, {2, 1024, 2048}, {5, 1001}};
  for (const at::ScalarType t : {at::kBFloat16, at::kHalf, at::kFloat}) {
    for (const auto& shape : shapes) {
      const std::string what =
          std::string(c10::toString(t)) + " " + c10::str(at::IntArrayRef(shape));
      const at::Tensor gate = scaled_randn(shape, t, 3.0).to(at::kCUDA);
      const at::Tensor up = scaled_randn(shape, t, 1.0).to(at::kCUDA);
      const at::Tensor probe = swiglu_product(gate.detach().requires_grad_(true), up);
      EXPECT_TRUE(ran_fused(probe)) << what << ": the fused kernel was not used";
      expect_matches(gate, up, t, what);
    }
  }
}

TEST(SwiGluCuda, MisalignedStartsTakeTheScalarPathAndStillMatch) {
  REQUIRE_GPU();
  at::manual_seed(2);
  // Contiguous but starting one element into their storage: not 16-byte aligned.
  const at::Tensor gate_base = scaled_randn({4097}, at::kBFloat16, 3.0).to(at::kCUDA);
  const at::Tensor up_base = scaled_randn({4097}, at::kBFloat16, 1.0).to(at::kCUDA);
  const at::Tensor gate = gate_base.narrow(0, 1, 4096), up = up_base.narrow(0, 1, 4096);
  ASSERT_TRUE(gate.is_contiguous());
  EXPECT_TRUE(ran_fused(swiglu_product(gate.detach().requires_grad_(true), up)));
  expect_matches(gate, up, at::kBFloat16, "misaligned bf16");
}

TEST(SwiGluCuda, OtherInputsFallBackToPlainOps) {
  REQUIRE_GPU();
  at::manual_seed(3);
  const auto on_gpu = [](const at::Tensor& t) { return t.to(at::kCUDA); };
  // Mixed dtypes, a strided view and float64 go through silu and mul, with the same results.
  const at::Tensor gate = on_gpu(scaled_randn({6, 32}, at::kFloat, 3.0));
  const at::Tensor up_half = on_gpu(scaled_randn({6, 32}, at::kBFloat16, 1.0));
  EXPECT_FALSE(ran_fused(swiglu_product(gate.detach().requires_grad_(true), up_half)));
  const at::Tensor wide = on_gpu(scaled_randn({32, 6}, at::kFloat, 3.0)).t();
  EXPECT_FALSE(ran_fused(swiglu_product(wide.detach().requires_grad_(true), wide)));
  expect_matches(wide, on_gpu(scaled_randn({6, 32}, at::kFloat, 1.0)), at::kFloat, "strided");
  const at::Tensor gd = on_gpu(scaled_randn({6, 32}, at::kDouble, 3.0));
  expect_matches(gd, on_gpu(scaled_randn({6, 32}, at::kDouble, 1.0)), at::kDouble, "float64");
  const at::Tensor empty = at::empty({0, 8}, at::TensorOptions().device(at::kCUDA));
  EXPECT_EQ(swiglu_product(empty, empty).numel(), 0);
}

}  // namespace
}  // namespace cca
