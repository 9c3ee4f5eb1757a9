#include "ops/norm.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "ops/autocast.h"

#ifdef CCA_WITH_CUDA
#include "../../kernels/add_rms_norm.h"
#include "../../kernels/rms_norm.h"
#endif

namespace cca {
namespace {

#ifdef CCA_WITH_CUDA
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// x [..., E] fp32 → rows in out_dtype; the saved rstd makes the backward one pass. Rows the
// warp-per-row kernels take (E % 4 == 0, E ≤ 2048) go there; wider or odd rows to the
// block-per-row kernels.
class RmsNormFromResidual : public torch::autograd::Function<RmsNormFromResidual> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            double eps, at::ScalarType out_dtype) {
    const at::Tensor rows = x.reshape({-1, x.size(-1)});
    const bool warp_rows = kernels::add_rms_norm_supported(x.size(-1), at::Tensor(), out_dtype);
    at::Tensor out, rstd;
    if (warp_rows) {
      auto result = kernels::add_rms_norm_forward_cuda(rows, at::Tensor(), weight, eps, out_dtype);
      out = result.out, rstd = result.rstd;
    } else {
      auto result = kernels::rms_norm_forward_cuda(rows, weight, eps, out_dtype);
      out = result.out, rstd = result.rstd;
    }
    ctx->save_for_backward({rows, weight, rstd});
    ctx->saved_data["warp_rows"] = warp_rows;
    return out.view(x.sizes());
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& rows = saved[0];
    const at::Tensor grad = grad_outputs[0].reshape(rows.sizes()).contiguous();
    at::Tensor grad_x, grad_weight;
    if (ctx->saved_data["warp_rows"].toBool()) {
      auto result = kernels::add_rms_norm_backward_cuda(grad, rows, saved[1], saved[2],
                                                        at::Tensor(), std::nullopt);
      grad_x = result.grad_sum, grad_weight = result.grad_weight;
    } else {
      auto result = kernels::rms_norm_backward_cuda(grad, rows, saved[1], saved[2]);
      grad_x = result.grad_x, grad_weight = result.grad_weight;
    }
    return {grad_x.view(grad_outputs[0].sizes()), grad_weight, at::Tensor(), at::Tensor()};
  }
};

// (residual, delta) → (residual + delta, its norm in out_dtype). Backward receives the gradient
// of the sum from its other uses and adds the norm's to it in the same pass.
class AddRmsNorm : public torch::autograd::Function<AddRmsNorm> {
 public:
  static tensor_list forward(AutogradContext* ctx, const at::Tensor& residual,
                             const at::Tensor& delta, const at::Tensor& weight, double eps,
                             at::ScalarType out_dtype) {
    ctx->set_materialize_grads(false);
    const int64_t E = residual.size(-1);
    kernels::AddRmsNormForward result = kernels::add_rms_norm_forward_cuda(
        residual.reshape({-1, E}), delta.reshape({-1, E}), weight, eps, out_dtype);
    ctx->save_for_backward({result.sum, weight, result.rstd});
    ctx->saved_data["delta_dtype"] = delta.scalar_type();
    return {result.sum.view(residual.sizes()), result.out.view(residual.sizes())};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& sum = saved[0];
    const at::ScalarType delta_dtype = ctx->saved_data["delta_dtype"].toScalarType();
    const at::IntArrayRef shape =
        grad_outputs[0].defined() ? grad_outputs[0].sizes() : grad_outputs[1].sizes();
    const at::Tensor grad_through =
        grad_outputs[0].defined() ? grad_outputs[0].reshape(sum.sizes()) : at::Tensor();
    const at::Tensor grad_out = grad_outputs[1].defined()
                                    ? grad_outputs[1].reshape(sum.sizes())
                                    : at::zeros(sum.sizes(), sum.options().dtype(delta_dtype));
    kernels::AddRmsNormBackward result = kernels::add_rms_norm_backward_cuda(
        grad_out, sum, saved[1], saved[2], grad_through, delta_dtype);
    return {result.grad_sum.view(shape), result.grad_delta.view(shape), result.grad_weight,
            at::Tensor(), at::Tensor()};
  }
};

bool fusable(const at::Tensor& x, const at::Tensor& weight) {
  return x.is_cuda() && x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat &&
         x.is_contiguous() && x.numel() > 0 && x.size(-1) <= kernels::kRmsNormMaxDim;
}

bool add_fusable(const at::Tensor& residual, const at::Tensor& delta, const at::Tensor& weight,
                 at::ScalarType out_dtype) {
  return residual.is_cuda() && residual.scalar_type() == at::kFloat &&
         weight.scalar_type() == at::kFloat && delta.device() == residual.device() &&
         delta.sizes() == residual.sizes() && residual.numel() > 0 &&
         kernels::add_rms_norm_supported(residual.size(-1), delta, out_dtype);
}
#endif

}  // namespace

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : dim_(dim), eps_(eps) {
  weight = register_parameter("weight", at::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) const {
#ifdef CCA_WITH_CUDA
  // The fp32 residual stream on CUDA: normalised straight into the dtype the next GEMM runs in
  // under autocast, so no cast kernel follows either way.
  if (fusable(x, weight)) {
    return RmsNormFromResidual::apply(x, weight, eps_, autocast_dtype(x).value_or(at::kFloat));
  }
#endif
  // fp32/fp64 input (the residual stream, also under autocast): LibTorch's rms_norm, one fused
  // kernel each way on CUDA instead of a chain of six.
  if ((x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) &&
      weight.scalar_type() == x.scalar_type()) {
    return at::rms_norm(x, {dim_}, weight, eps_);
  }
  // Half-precision input: normalise in float32 and return in x's dtype.
  const at::ScalarType compute = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor xf = x.to(compute);
  const at::Tensor scale = at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return (xf * scale * weight.to(compute)).to(x.scalar_type());
}

NormedSum RMSNormImpl::forward_add(const at::Tensor& residual, const at::Tensor& delta) const {
  if (!delta.defined()) return {residual, forward(residual)};
#ifdef CCA_WITH_CUDA
  const at::ScalarType out_dtype = autocast_dtype(residual).value_or(at::kFloat);
  if (add_fusable(residual, delta, weight, out_dtype)) {
    const auto outputs = AddRmsNorm::apply(residual, delta, weight, eps_, out_dtype);
    return {outputs[0], outputs[1]};
  }
#endif
  at::Tensor sum = residual + delta;
  at::Tensor normed = forward(sum);
  return {sum, normed};
}

}  // namespace cca
