#include "moe/token_permutation.h"

#include <torch/autograd.h>

#ifdef CCA_WITH_CUDA
#include "../../kernels/moe_combine.h"
#endif

namespace cca {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Σ_j rows[row_of_slot[t·k + j]] for each token t, in order of j: on CUDA the combine kernel with
// unit gates (no [T, k, E] gather in between).
at::Tensor sum_rows_of_each_token(const at::Tensor& rows, const at::Tensor& row_of_slot,
                                  int64_t k) {
  const int64_t tokens = rows.size(0) / k;
#ifdef CCA_WITH_CUDA
  if (rows.is_cuda()) {
    const at::Tensor ones = at::ones({tokens, k}, rows.options().dtype(at::kFloat));
    if (kernels::moe_combine_supported(rows, ones)) {
      return kernels::moe_combine_forward_cuda(rows, row_of_slot, ones);
    }
  }
#endif
  return rows.index_select(0, row_of_slot).view({tokens, k, rows.size(1)}).sum(1);
}

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
    return {sum_rows_of_each_token(grad, row_of_slot, k), at::Tensor(), at::Tensor(), at::Tensor()};
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

#ifdef CCA_WITH_CUDA
// The weighted sum of each token's expert rows, read in place (kernels/moe_combine.h).
class CombineFromRows : public torch::autograd::Function<CombineFromRows> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& rows, const at::Tensor& gates,
                            const at::Tensor& row_of_slot) {
    ctx->save_for_backward({rows, gates, row_of_slot});
    return kernels::moe_combine_forward_cuda(rows, row_of_slot, gates);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    kernels::MoeCombineGrads grads = kernels::moe_combine_backward_cuda(
        grad_outputs[0].contiguous(), saved[0], saved[2], saved[1]);
    return {grads.rows, grads.gates, at::Tensor()};
  }
};
#endif

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

at::Tensor combine_from_rows(const at::Tensor& rows, const at::Tensor& gates,
                             const SlotOrder& order) {
#ifdef CCA_WITH_CUDA
  if (kernels::moe_combine_supported(rows, gates)) {
    return CombineFromRows::apply(rows, gates, order.row_of_slot);
  }
#endif
  // In the rows' dtype (bf16 under autocast); the sum over k accumulates in fp32 in the reduction.
  const at::Tensor by_slot = return_to_slots(rows, order);
  return (by_slot * gates.to(by_slot.scalar_type()).unsqueeze(-1)).sum(1);
}

}  // namespace cca
