#include "ops/rope.h"

#include "util/error.h"

namespace cca {

Rotary::Rotary(int64_t rotary_dim, double theta) : rotary_dim_(rotary_dim), theta_(theta) {
  if (rotary_dim % 2 != 0)
    throw Error("RoPE needs an even rotary width, got " + std::to_string(rotary_dim));
}

at::Tensor Rotary::apply(const at::Tensor& x, int64_t offset) const {
  if (rotary_dim_ == 0) return x;
  const int64_t seq = x.size(1);
  const int64_t half = rotary_dim_ / 2;
  const auto f64 = at::TensorOptions().dtype(at::kDouble).device(x.device());
  const at::Tensor inv_freq =
      at::pow(theta_, at::arange(0, half, f64).mul(-2.0 / static_cast<double>(rotary_dim_)));
  const at::Tensor positions = at::arange(offset, offset + seq, f64);
  const at::Tensor angles = at::outer(positions, inv_freq);  // [S, r/2]
  const at::ScalarType compute = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const at::Tensor cos = angles.cos().to(compute).view({1, seq, 1, half});
  const at::Tensor sin = angles.sin().to(compute).view({1, seq, 1, half});
  const at::Tensor rotated = x.narrow(-1, 0, rotary_dim_).to(compute);
  const at::Tensor a = rotated.narrow(-1, 0, half);
  const at::Tensor b = rotated.narrow(-1, half, half);
  at::Tensor out = at::cat({a * cos - b * sin, b * cos + a * sin}, -1).to(x.scalar_type());
  if (rotary_dim_ == x.size(-1)) return out;
  return at::cat({out, x.narrow(-1, rotary_dim_, x.size(-1) - rotary_dim_)}, -1);
}

}  // namespace cca
