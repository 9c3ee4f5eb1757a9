// Expert-order permutation of routed token copies: the orders are inverse permutations, the
// gather-only autograd functions give exactly what index_select and its scatter-add gradient do,
// and the combine (plain ops, and on CUDA the fused kernels) is the gated sum of each token's rows.
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <string>
#include <vector>

#include "moe/token_permutation.h"
#include "ops/device.h"
#include "testing/tolerance.h"

#ifdef CCA_WITH_CUDA
#include "moe_combine.h"
#endif

namespace cca {
namespace {

const at::TensorOptions kLong = at::TensorOptions().dtype(at::kLong);

// 7 tokens, top-2 among 4 experts; expert 3 is never chosen, expert 1 by most tokens.
at::Tensor example_experts() {
  return at::tensor({1, 0, 1, 2, 0, 1, 1, 2, 2, 0, 1, 0, 0, 2}, kLong).view({7, 2});
}

TEST(TokenPermutation, OrdersAreInverseAndSortedStablyByExpert) {
  const at::Tensor experts = example_experts();
  const SlotOrder order = sort_slots_by_expert(experts);
  ASSERT_EQ(order.top_k, 2);
  const at::Tensor flat = experts.reshape(-1);
  const at::Tensor identity = at::arange(14, kLong);
  EXPECT_TRUE(at::equal(order.row_of_slot.index_select(0, order.slot_of_row), identity));
  EXPECT_TRUE(at::equal(order.slot_of_row.index_select(0, order.row_of_slot), identity));
  const at::Tensor expert_of_row = flat.index_select(0, order.slot_of_row);
  EXPECT_TRUE(at::equal(expert_of_row, std::get<0>(at::sort(flat))));
  // Stable: within one expert's slice the slots (hence tokens) ascend.
  for (int64_t i = 1; i < 14; ++i) {
    if (expert_of_row[i].item<int64_t>() == expert_of_row[i - 1].item<int64_t>()) {
      EXPECT_GT(order.slot_of_row[i].item<int64_t>(), order.slot_of_row[i - 1].item<int64_t>());
    }
  }
  EXPECT_TRUE(at::equal(order.token_of_row, at::div(order.slot_of_row, 2, "floor")));
}

TEST(TokenPermutation, DispatchAndReturnMatchIndexSelectForwardAndBackward) {
  at::manual_seed(0);
  const SlotOrder order = sort_slots_by_expert(example_experts());
  const at::Tensor tokens = at::randn({7, 5}, at::kDouble).requires_grad_(true);
  const at::Tensor rows = dispatch_to_experts(tokens, order);
  const at::Tensor plain_rows = tokens.index_select(0, order.token_of_row);
  EXPECT_TRUE(at::equal(rows, plain_rows));

  // Something different per row, so a mix-up of rows changes the gradients.
  const at::Tensor scale = at::randn({14, 5}, at::kDouble);
  const at::Tensor by_slot = return_to_slots(rows * scale, order);
  ASSERT_EQ(by_slot.sizes(), (at::IntArrayRef{7, 2, 5}));
  const at::Tensor plain_by_slot =
      (plain_rows * scale).index_select(0, order.row_of_slot).view({7, 2, 5});
  EXPECT_TRUE(at::equal(by_slot, plain_by_slot));
  // Slot t·k + j holds token t's copy.
  const at::Tensor copies = return_to_slots(rows, order);
  EXPECT_TRUE(at::equal(copies.select(1, 0), tokens));
  EXPECT_TRUE(at::equal(copies.select(1, 1), tokens));

  const at::Tensor weights = at::randn({7, 2, 5}, at::kDouble);
  const at::Tensor grad = torch::autograd::grad({(by_slot * weights).sum()}, {tokens})[0];
  const at::Tensor plain_grad =
      torch::autograd::grad({(plain_by_slot * weights).sum()}, {tokens})[0];
  EXPECT_LT((grad - plain_grad).abs().max().item<double>(), 1e-12);
}

TEST(TokenPermutation, OneChoicePerTokenAndNoTokens) {
  const SlotOrder order = sort_slots_by_expert(at::tensor({2, 0, 1, 0}, kLong).view({4, 1}));
  EXPECT_TRUE(at::equal(order.token_of_row, at::tensor({1, 3, 2, 0}, kLong)));
  const SlotOrder empty = sort_slots_by_expert(at::empty({0, 2}, kLong));
  const at::Tensor none = at::empty({0, 3}).requires_grad_(true);
  EXPECT_EQ(return_to_slots(dispatch_to_experts(none, empty), empty).numel(), 0);
}

struct Combined {
  at::Tensor out, grad_rows, grad_gates;
};

// combine_from_rows and its gradients for an upstream gradient `weights` [T, E].
Combined combine(const at::Tensor& rows, const at::Tensor& gates, const SlotOrder& order,
                 const at::Tensor& weights) {
  const at::Tensor r = rows.detach().requires_grad_(true), g = gates.detach().requires_grad_(true);
  const at::Tensor out = combine_from_rows(r, g, order);
  const auto grads = torch::autograd::grad({(out.to(at::kDouble) * weights).sum()}, {r, g});
  return {out.detach(), grads[0], grads[1]};
}

// The same from the definition, in float64 on the CPU: out[t] = Σ_j g[t, j] · rows[row(t, j)].
Combined combine_reference(const at::Tensor& rows, const at::Tensor& gates, const SlotOrder& order,
                           const at::Tensor& weights) {
  const at::Tensor r = rows.detach().to(at::kDouble).cpu().requires_grad_(true);
  const at::Tensor g = gates.detach().to(at::kDouble).cpu().requires_grad_(true);
  const int64_t T = g.size(0), k = g.size(1);
  const at::Tensor picked = r.index_select(0, order.row_of_slot.cpu()).view({T, k, r.size(1)});
  const at::Tensor out = (picked * g.unsqueeze(-1)).sum(1);
  const auto grads = torch::autograd::grad({(out * weights.cpu()).sum()}, {r, g});
  return {out.detach(), grads[0], grads[1]};
}

TEST(TokenPermutation, CombineIsTheGatedSumOfEachTokensRows) {
  at::manual_seed(1);
  const SlotOrder order = sort_slots_by_expert(example_experts());
  const at::Tensor rows = at::randn({14, 5}, at::kDouble), gates = at::rand({7, 2}, at::kDouble);
  const at::Tensor weights = at::randn({7, 5}, at::kDouble);
  const Combined got = combine(rows, gates, order, weights);
  const Combined want = combine_reference(rows, gates, order, weights);
  EXPECT_LT((got.out - want.out).abs().max().item<double>(), 1e-12);
  EXPECT_LT((got.grad_rows - want.grad_rows).abs().max().item<double>(), 1e-12);
  EXPECT_LT((got.grad_gates - want.grad_gates).abs().max().item<double>(), 1e-12);
}

TEST(TokenPermutationCuda, FusedCombineMatchesTheDefinitionAndRepeatsBitForBit) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: fused MoE combine not exercised";
  struct Case {
    at::ScalarType dtype;
    int64_t tokens, experts, top_k, width;
  };
  const std::vector<Case> cases = {{at::kBFloat16, 300, 16, 2, 1024},
                                   {at::kBFloat16, 33, 8, 8, 64},
                                   {at::kHalf, 50, 4, 3, 256},
                                   {at::kFloat, 41, 6, 1, 12},
                                   {at::kFloat, 0, 4, 2, 64}};
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(at::toString(c.dtype)) + " T=" + std::to_string(c.tokens) +
                 " k=" + std::to_string(c.top_k) + " E=" + std::to_string(c.width));
    at::manual_seed(7);
    const at::TensorOptions on_gpu = at::TensorOptions().device(at::kCUDA);
    const at::Tensor experts =
        std::get<1>(at::rand({c.tokens, c.experts}).topk(c.top_k, -1)).to(at::kCUDA);
    const SlotOrder order = sort_slots_by_expert(experts);
    const at::Tensor rows = at::randn({c.tokens * c.top_k, c.width}, on_gpu.dtype(c.dtype));
    const at::Tensor gates = at::rand({c.tokens, c.top_k}, on_gpu.dtype(at::kFloat));
    // Representable in the dtype, so the upstream gradient reaching the kernel is exact.
    const at::Tensor weights = at::randn({c.tokens, c.width}, on_gpu).to(c.dtype).to(at::kDouble);
#ifdef CCA_WITH_CUDA
    ASSERT_TRUE(kernels::moe_combine_supported(rows, gates)) << "the case must take the kernels";
#endif
    const Combined got = combine(rows, gates, order, weights);
    const Combined want = combine_reference(rows, gates, order, weights);
    ASSERT_EQ(got.out.scalar_type(), c.dtype);
    const double tol = testing::rounding_tolerance(c.dtype);
    EXPECT_LT(testing::worst_error(got.out, want.out), tol);
    // The rows' gradient is rounded to their dtype once; the gates' is an fp32 dot product.
    EXPECT_LT(testing::worst_error(got.grad_rows, want.grad_rows), tol);
    EXPECT_LT(testing::error_of_sum(got.grad_gates, want.grad_gates), 1e-5);
    // Dispatch's backward sums each token's row gradients the same way (unit gates).
    const at::Tensor upstream =
        at::randn({c.tokens * c.top_k, c.width}, on_gpu).to(c.dtype).to(at::kDouble);
    const at::Tensor tokens =
        at::randn({c.tokens, c.width}, on_gpu.dtype(c.dtype)).requires_grad_(true);
    const at::Tensor copies = dispatch_to_experts(tokens, order).to(at::kDouble);
    const at::Tensor tokens_grad = torch::autograd::grad({(copies * upstream).sum()}, {tokens})[0];
    const at::Tensor want_tokens_grad = upstream.cpu()
                                            .index_select(0, order.row_of_slot.cpu())
                                            .view({c.tokens, c.top_k, c.width})
                                            .sum(1);
    EXPECT_LT(testing::worst_error(tokens_grad, want_tokens_grad), tol);
    const Combined again = combine(rows, gates, order, weights);
    EXPECT_TRUE(at::equal(got.out, again.out));
    EXPECT_TRUE(at::equal(got.grad_rows, again.grad_rows));
    EXPECT_TRUE(at::equal(got.grad_gates, again.grad_gates));
  }
}

}  // namespace
}  // namespace cca
