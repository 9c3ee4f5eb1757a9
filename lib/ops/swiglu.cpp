#include "ops/swiglu.h"

#include <torch/autograd.h>

#ifdef CCA_WITH_CUDA
// By path: a plain "swiglu.h" would find this file's own header first.
#include "../../kernels/swiglu.h"
#endif

namespace cca {
namespace {

#ifdef CCA_WITH_CUDA
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class FusedSwiGlu : public torch::autograd::Function<FusedSwiGlu> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& gate, const at::Tensor& up) {
    ctx->save_for_backward({gate, up});
    return kernels::swiglu_forward_cuda(gate, up);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    auto [grad_gate, grad_up] =
        kernels::swiglu_backward_cuda(grad_outputs[0].contiguous(), saved[0], saved[1]);
    return {grad_gate, grad_up};
  }
};
#endif

}  // namespace

at::Tensor swiglu_product(const at::Tensor& gate, const at::Tensor& up) {
#ifdef CCA_WITH_CUDA
  const bool fusable = gate.is_cuda() && gate.scalar_type() != at::kDouble &&
                       gate.scalar_type() == up.scalar_type() && gate.sizes() == up.sizes() &&
                       gate.is_contiguous() && up.is_contiguous();
  if (fusable) return FusedSwiGlu::apply(gate, up);
#endif
  return at::silu(gate) * up;
}

}  // namespace cca
