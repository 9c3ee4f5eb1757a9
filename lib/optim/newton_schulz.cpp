#include "optim/newton_schulz.h"

#include "util/error.h"
#include "util/format.h"

namespace cca {

at::Tensor newton_schulz(const at::Tensor& matrices, int64_t steps, at::ScalarType compute_dtype) {
  if (matrices.dim() != 2 && matrices.dim() != 3) {
    throw Error(format("newton_schulz: expected a matrix or a stack of matrices, got {} dims",
                       matrices.dim()));
  }
  using C = NewtonSchulzCoefficients;
  const bool tall = matrices.size(-2) > matrices.size(-1);
  const bool single = matrices.dim() == 2;
  at::Tensor x = single ? matrices.unsqueeze(0) : matrices;
  if (tall) x = x.transpose(-2, -1);
  // The Frobenius norm bounds the spectral norm, so every singular value starts in (0, 1],
  // where the iteration converges; taken in fp32 before any cast to bf16.
  const at::Tensor norm = x.to(at::kFloat).square().sum({-2, -1}, /*keepdim=*/true).sqrt();
  x = (x.to(at::kFloat) / (norm + 1e-7)).to(compute_dtype);
  // The scalings ride in the products' epilogues (baddbmm's beta and alpha): three launches per
  // iteration for the whole stack instead of seven.
  for (int64_t i = 0; i < steps; ++i) {
    const at::Tensor gram = at::bmm(x, x.transpose(-2, -1));
    const at::Tensor poly = at::baddbmm(gram, gram, gram, C::b, C::c);
    x = at::baddbmm(x, poly, x, C::a, 1.0);
  }
  if (tall) x = x.transpose(-2, -1);
  return single ? x.squeeze(0) : x;
}

at::ScalarType newton_schulz_dtype(const at::Device& device) {
  return device.is_cuda() ? at::kBFloat16 : at::kFloat;
}

}  // namespace cca
