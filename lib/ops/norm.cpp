#include "ops/norm.h"

#include <ATen/ATen.h>

namespace cca {

RMSNormImpl::RMSNormImpl(int64_t dim, double eps) : dim_(dim), eps_(eps) {
  weight = register_parameter("weight", at::ones({dim}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) const {
  // Normalise in float32 (or float64) and return in x's dtype.
  const at::ScalarType compute = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor xf = x.to(compute);
  const at::Tensor scale = at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return (xf * scale * weight.to(compute)).to(x.scalar_type());
}

}  // namespace cca
