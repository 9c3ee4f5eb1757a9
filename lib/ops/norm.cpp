#include "ops/norm.h"

#include <ATen/ATen.h>

namespace cca {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : dim_(dim), eps_(eps) {
  weight = register_parameter("weight", at::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) const {
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

}  // namespace cca
