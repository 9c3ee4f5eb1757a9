// Stacked projections equal the separate ones, forward and backward, and their backward makes
// one concatenation rather than a zero-filled gradient per part.
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <vector>

#include "ops/stacked_linear.h"

namespace cca {
namespace {

TEST(StackedLinear, EqualsSeparateProjectionsWithGradients) {
  at::manual_seed(0);
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor x = at::randn({2, 5, 8}, f64).requires_grad_(true);
  const std::vector<at::Tensor> weights = {at::randn({8, 8}, f64).requires_grad_(true),
                                           at::randn({4, 8}, f64).requires_grad_(true),
                                           at::randn({6, 8}, f64).requires_grad_(true)};
  const std::vector<at::Tensor> stacked = stacked_linear(x, weights);
  ASSERT_EQ(stacked.size(), 3u);
  std::vector<at::Tensor> upstream;
  at::Tensor loss_stacked = at::zeros({}, f64), loss_separate = at::zeros({}, f64);
  for (size_t i = 0; i < weights.size(); ++i) {
    const at::Tensor separate = at::linear(x, weights[i]);
    EXPECT_EQ(stacked[i].sizes(), separate.sizes());
    EXPECT_TRUE(at::allclose(stacked[i], separate, 1e-12, 1e-12)) << i;
    upstream.push_back(at::randn(separate.sizes(), f64));
    loss_stacked = loss_stacked + (stacked[i] * upstream[i]).sum();
    loss_separate = loss_separate + (separate * upstream[i]).sum();
  }
  std::vector<at::Tensor> inputs = weights;
  inputs.push_back(x);
  const auto got = torch::autograd::grad({loss_stacked}, inputs);
  const auto want = torch::autograd::grad({loss_separate}, inputs);
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_TRUE(at::allclose(got[i], want[i], 1e-12, 1e-12)) << "gradient " << i;
  // The parts come from one split, so autograd sees one node, not one slice per part.
  EXPECT_EQ(stacked[0].grad_fn()->name(), stacked[2].grad_fn()->name());
  EXPECT_NE(stacked[0].grad_fn()->name().find("Split"), std::string::npos)
      << stacked[0].grad_fn()->name();
}

TEST(StackedLinear, UnusedPartsGetNoGradientAndOthersStillDo) {
  const at::Tensor x = at::randn({3, 4}, at::kDouble);
  const at::Tensor a = at::randn({2, 4}, at::kDouble).requires_grad_(true);
  const at::Tensor b = at::randn({5, 4}, at::kDouble).requires_grad_(true);
  const std::vector<at::Tensor> parts = stacked_linear(x, {a, b});
  const auto grads = torch::autograd::grad({parts[1].sum()}, {a, b});
  EXPECT_TRUE(at::equal(grads[0], at::zeros_like(a)));
  EXPECT_TRUE(at::allclose(grads[1], x.sum(0).expand({5, 4})));
}

}  // namespace
}  // namespace cca
