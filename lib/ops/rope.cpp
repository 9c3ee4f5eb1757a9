#include "ops/rope.h"

#include <torch/autograd.h>

#include <map>
#include <mutex>
#include <tuple>

#include "util/error.h"

#ifdef CCA_WITH_CUDA
// By path: a plain "rope.h" would find this file's own header first.
#include "../../kernels/rope.h"
#endif

namespace cca {
namespace {

struct TableKey {
  at::DeviceType type;
  at::DeviceIndex index;
  at::ScalarType dtype;
  int64_t rotary_dim;
  double theta;
  bool operator<(const TableKey& o) const {
    return std::tie(type, index, dtype, rotary_dim, theta) <
           std::tie(o.type, o.index, o.dtype, o.rotary_dim, o.theta);
  }
};

// Positions 0 .. length-1 in float64 on the CPU. The same expression Rotary always used (and
// cca_rope_inverse_frequencies still uses), so the angles are bit-identical to the old per-call
// ones and to the fused CCA prologue's.
RotaryTables compute_tables(const at::Device& device, at::ScalarType compute, int64_t length,
                            int64_t rotary_dim, double theta) {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor inv_freq = at::pow(
      theta, at::arange(0, rotary_dim / 2, f64).mul(-2.0 / static_cast<double>(rotary_dim)));
  const at::Tensor angles = at::outer(at::arange(0, length, f64), inv_freq);  // [L, r/2]
  return {angles.cos().to(compute).to(device).contiguous(),
          angles.sin().to(compute).to(device).contiguous()};
}

// The plain-ops rotation (CPU, float64, per-token positions, and the reference the fused kernel
// must match): cos, sin are the tokens' rows in the compute dtype, [1 or B, S, 1, r/2].
at::Tensor rotate_plain(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                        int64_t rotary_dim) {
  const int64_t half = rotary_dim / 2;
  const at::Tensor rotated = x.narrow(-1, 0, rotary_dim).to(cos.scalar_type());
  const at::Tensor a = rotated.narrow(-1, 0, half);
  const at::Tensor b = rotated.narrow(-1, half, half);
  at::Tensor out = at::cat({a * cos - b * sin, b * cos + a * sin}, -1).to(x.scalar_type());
  if (rotary_dim == x.size(-1)) return out;
  return at::cat({out, x.narrow(-1, rotary_dim, x.size(-1) - rotary_dim)}, -1);
}

#ifdef CCA_WITH_CUDA
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The fused kernel in both directions: a rotation's backward is the inverse rotation of the
// output gradient, so nothing but the tables is saved.
struct RotaryFunction : torch::autograd::Function<RotaryFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& cos,
                            const at::Tensor& sin, int64_t offset, int64_t rotary_dim) {
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["offset"] = offset;
    ctx->saved_data["rotary_dim"] = rotary_dim;
    return kernels::rope_apply_cuda(x, cos, sin, offset, rotary_dim, /*inverse=*/false);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    at::Tensor grad_x;
    if (grads[0].defined()) {
      grad_x =
          kernels::rope_apply_cuda(grads[0], saved[0], saved[1], ctx->saved_data["offset"].toInt(),
                                   ctx->saved_data["rotary_dim"].toInt(), /*inverse=*/true);
    }
    return {grad_x, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

bool fused_dtype(at::ScalarType t) {
  return t == at::kBFloat16 || t == at::kHalf || t == at::kFloat;
}
#endif

}  // namespace

RotaryTables rotary_tables(const at::Device& device, at::ScalarType compute, int64_t length,
                           int64_t rotary_dim, double theta) {
  // Never destroyed: CUDA tables must not be freed after the CUDA runtime has shut down.
  static auto* const tables = new std::map<TableKey, RotaryTables>();
  static auto* const mutex = new std::mutex();
  const TableKey key{device.type(), device.index(), compute, rotary_dim, theta};
  const std::lock_guard<std::mutex> lock(*mutex);
  RotaryTables& entry = (*tables)[key];
  if (!entry.cos.defined() || entry.cos.size(0) < length) {
    int64_t capacity = 4096;
    while (capacity < length) capacity *= 2;
    entry = compute_tables(device, compute, capacity, rotary_dim, theta);
  }
  return entry;
}

Rotary::Rotary(int64_t rotary_dim, double theta) : rotary_dim_(rotary_dim), theta_(theta) {
  if (rotary_dim % 2 != 0)
    throw Error("RoPE needs an even rotary width, got " + std::to_string(rotary_dim));
}

at::Tensor Rotary::apply(const at::Tensor& x, int64_t offset) const {
  if (rotary_dim_ == 0) return x;
  TORCH_CHECK(x.dim() == 4 && x.size(3) >= rotary_dim_,
              "Rotary::apply expects [B, S, H, D] with D >= ", rotary_dim_);
  TORCH_CHECK(offset >= 0, "Rotary::apply: negative position offset");
  const int64_t seq = x.size(1);
  const at::ScalarType compute = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const RotaryTables t = rotary_tables(x.device(), compute, offset + seq, rotary_dim_, theta_);
#ifdef CCA_WITH_CUDA
  if (x.is_cuda() && fused_dtype(x.scalar_type()))
    return RotaryFunction::apply(x, t.cos, t.sin, offset, rotary_dim_);
#endif
  const int64_t half = rotary_dim_ / 2;
  return rotate_plain(x, t.cos.narrow(0, offset, seq).view({1, seq, 1, half}),
                      t.sin.narrow(0, offset, seq).view({1, seq, 1, half}), rotary_dim_);
}

at::Tensor Rotary::apply(const at::Tensor& x, const at::Tensor& positions) const {
  if (rotary_dim_ == 0) return x;
  TORCH_CHECK(x.dim() == 4 && x.size(3) >= rotary_dim_,
              "Rotary::apply expects [B, S, H, D] with D >= ", rotary_dim_);
  TORCH_CHECK(
      positions.dim() == 2 && positions.size(0) == x.size(0) && positions.size(1) == x.size(1),
      "Rotary::apply: positions must be [B, S] like x");
  const int64_t B = x.size(0), seq = x.size(1), half = rotary_dim_ / 2;
  const at::ScalarType compute = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  // Positions inside a row never reach the row's length, so no host read of their maximum.
  const RotaryTables t = rotary_tables(x.device(), compute, seq, rotary_dim_, theta_);
  const at::Tensor rows = positions.reshape({-1});
  return rotate_plain(x, t.cos.index_select(0, rows).view({B, seq, 1, half}),
                      t.sin.index_select(0, rows).view({B, seq, 1, half}), rotary_dim_);
}

}  // namespace cca
