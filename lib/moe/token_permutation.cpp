#include "moe/token_permutation.h"

#include <torch/autograd.h>

namespace cca {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class DispatchToExperts : public torch::autograd::Function<DispatchToExperts> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& tokens,
                            const at::Tensor& token_of_row, const at::Tensor& row_of_slot,
                            int64_t top_k) {
    ctx->save_for_backward({row_of_slot});
    ctx->saved_data["top_k"] = top_k;
    return tokens.index_select(0, token_of_row);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const at::Tensor row_of_slot = ctx->get_saved_variables()[0];
    const int64_t k = ctx->saved_data["top_k"].toInt();
    const at::Tensor& grad = grad_outputs[0];
    const at::Tensor by_slot = grad.index_select(0, row_of_slot);
    return {by_slot.view({grad.size(0) / k, k, grad.size(1)}).sum(1), at::Tensor(), at::Tensor(),
            at::Tensor()};
  }
};

// rows.index_select(0, index) where index is a permutation with inverse `inverse`: the gradient
// is the gather by the inverse.
class PermuteRows : public torch::autograd::Function<PermuteRows> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& rows, const at::Tensor& index,
                            const at::Tensor& inverse) {
    ctx->save_for_backward({inverse});
    return rows.index_select(0, index);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const at::Tensor inverse = ctx->get_saved_variables()[0];
    return {grad_outputs[0].index_select(0, inverse), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

SlotOrder sort_slots_by_expert(const at::Tensor& experts) {
  at::NoGradGuard no_grad;
  SlotOrder order;
  order.top_k = experts.size(1);
  order.slot_of_row = at::argsort(experts.reshape(-1), /*stable=*/true);
  order.token_of_row = at::div(order.slot_of_row, order.top_k, "floor");
  order.row_of_slot = at::empty_like(order.slot_of_row);
  order.row_of_slot.index_put_({order.slot_of_row},
                               at::arange(order.slot_of_row.numel(), order.slot_of_row.options()));
  return order;
}

at::Tensor dispatch_to_experts(const at::Tensor& tokens, const SlotOrder& order) {
  return DispatchToExperts::apply(tokens, order.token_of_row, order.row_of_slot, order.top_k);
}

at::Tensor return_to_slots(const at::Tensor& rows, const SlotOrder& order) {
  const at::Tensor by_slot = PermuteRows::apply(rows, order.row_of_slot, order.slot_of_row);
  return by_slot.view({rows.size(0) / order.top_k, order.top_k, rows.size(1)});
}

}  // namespace cca
