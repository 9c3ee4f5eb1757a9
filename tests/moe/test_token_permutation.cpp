// Expert-order permutation of routed token copies: the orders are inverse permutations, and the
// gather-only autograd functions give exactly what index_select and its scatter-add gradient do.
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include "moe/token_permutation.h"

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

}  // namespace
}  // namespace cca
