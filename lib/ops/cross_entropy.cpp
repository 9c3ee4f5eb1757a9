#include "ops/cross_entropy.h"

#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/autograd.h>

#include <algorithm>

#include "ops/autocast.h"

#ifdef CCA_WITH_CUDA
#include "../../kernels/cross_entropy.h"
#endif

namespace cca {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

int64_t default_chunk_tokens(int64_t vocab) {
  // ~2^28 fp32 logits (1 GiB), and never so few rows that the GEMMs starve.
  return std::max<int64_t>(1024, (int64_t{1} << 28) / std::max<int64_t>(vocab, 1));
}

// a · b, produced directly in `out` precision: on CUDA a bf16/fp16 GEMM writes fp32 itself,
// which saves both the rounding and a conversion pass over the [n, V] logits.
at::Tensor matmul_to(const at::Tensor& a, const at::Tensor& b, at::ScalarType out) {
  const bool half = a.scalar_type() == at::kBFloat16 || a.scalar_type() == at::kHalf;
  if (a.is_cuda() && half && out == at::kFloat) return at::mm(a, b, out);
  return at::mm(a, b).to(out);
}

// The chunk's share of the head's gradients: rows of grad_hidden, and a sum into grad_weight.
void accumulate_grads(const at::Tensor& grad_logits, const at::Tensor& h_chunk, const at::Tensor& w,
                      at::Tensor grad_h_rows, at::Tensor& grad_w) {
  at::mm_out(grad_h_rows, grad_logits, w);
  grad_w.add_(matmul_to(grad_logits.t(), h_chunk, grad_w.scalar_type()));
}

class LinearCrossEntropy : public torch::autograd::Function<LinearCrossEntropy> {
 public:
  static tensor_list forward(AutogradContext* ctx, const at::Tensor& hidden,
                             const at::Tensor& weight, const at::Tensor& targets, double z_weight,
                             int64_t chunk, int64_t compute_dtype, bool want_grad) {
    // The casts below are explicit; autocast must not re-cast the chunk GEMMs.
    c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    const auto compute = static_cast<at::ScalarType>(compute_dtype);
    const at::ScalarType reduce = compute == at::kDouble ? at::kDouble : at::kFloat;
    const at::Tensor h = hidden.to(compute), w = weight.to(compute);
    const int64_t N = h.size(0);
    const auto scalar = at::TensorOptions(h.device()).dtype(reduce);
    at::Tensor ce_sum = at::zeros({}, scalar), z_sum = at::zeros({}, scalar);
    at::Tensor grad_h, grad_w;
    if (want_grad) {
      grad_h = at::empty_like(h);
      grad_w = at::zeros(weight.sizes(), weight.options().dtype(reduce));
    }
    for (int64_t start = 0; start < N; start += chunk) {
      const int64_t n = std::min(chunk, N - start);
      const at::Tensor h_chunk = h.narrow(0, start, n);
      const at::Tensor target = targets.narrow(0, start, n);
#ifdef CCA_WITH_CUDA
      if (h.is_cuda() && compute != at::kDouble) {
        // Logits in the compute dtype; the kernel reduces in fp32 and leaves the gradient in place.
        at::Tensor logits = at::mm(h_chunk, w.t());
        at::Tensor loss, z;
        kernels::cross_entropy_rows_cuda(logits, target.contiguous(), z_weight, want_grad, loss, z);
        ce_sum.add_(loss.sum().to(reduce));
        z_sum.add_(z.sum().to(reduce));
        if (want_grad) accumulate_grads(logits, h_chunk, w, grad_h.narrow(0, start, n), grad_w);
        continue;
      }
#endif
      at::Tensor logits = matmul_to(h_chunk, w.t(), reduce);
      const at::Tensor lse = at::logsumexp(logits, {-1});
      const at::Tensor valid = target.ne(-1).to(reduce);
      const at::Tensor index = target.clamp_min(0).unsqueeze(1);
      const at::Tensor picked = logits.gather(1, index).squeeze(1);
      ce_sum.add_(((lse - picked) * valid).sum());
      z_sum.add_((lse * lse * valid).sum());
      if (!want_grad) continue;
      // d/dlogits of (−log p(target) + z_weight·lse²) = softmax·(1 + 2·z_weight·lse) − onehot,
      // on valid rows only; built in place over the logits.
      logits.sub_(lse.unsqueeze(1))
          .exp_()
          .mul_((valid * (1.0 + 2.0 * z_weight * lse)).unsqueeze(1));
      logits.scatter_add_(1, index, -valid.unsqueeze(1));
      accumulate_grads(logits.to(compute), h_chunk, w, grad_h.narrow(0, start, n), grad_w);
    }
    if (want_grad) {
      ctx->saved_data["grad_hidden"] = grad_h.to(hidden.scalar_type());
      ctx->saved_data["grad_weight"] = grad_w.to(weight.scalar_type());
    }
    at::Tensor objective = ce_sum + z_weight * z_sum;
    ctx->mark_non_differentiable({ce_sum, z_sum});
    return {objective, ce_sum, z_sum};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const at::Tensor& scale = grad_outputs[0];
    tensor_list grads(7);
    if (!scale.defined() || !ctx->saved_data.count("grad_hidden")) return grads;
    grads[0] = ctx->saved_data["grad_hidden"].toTensor() * scale;
    grads[1] = ctx->saved_data["grad_weight"].toTensor() * scale;
    return grads;
  }
};

}  // namespace

CrossEntropySums linear_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight,
                                      const at::Tensor& targets, double z_weight,
                                      int64_t chunk_tokens) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && hidden.size(1) == weight.size(1),
              "linear_cross_entropy: hidden [N, E] and weight [V, E] expected, got ",
              hidden.sizes(), " and ", weight.sizes());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == hidden.size(0),
              "linear_cross_entropy: targets [N] expected, got ", targets.sizes());
  const at::ScalarType compute = autocast_dtype(hidden).value_or(hidden.scalar_type());
  const int64_t chunk = chunk_tokens > 0 ? chunk_tokens : default_chunk_tokens(weight.size(0));
  const bool want_grad =
      at::GradMode::is_enabled() && (hidden.requires_grad() || weight.requires_grad());
  const tensor_list out = LinearCrossEntropy::apply(hidden, weight, targets, z_weight, chunk,
                                                    static_cast<int64_t>(compute), want_grad);
  return {out[0], out[1], out[2]};
}

}  // namespace cca
