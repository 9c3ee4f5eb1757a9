#include "ops/rope.h"

#include <torch/autograd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <tuple>

#include "util/error.h"
#include "util/format.h"

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
  RopeScaling::Kind scaling;
  double factor;
  int64_t original_max_seq_len;
  bool operator<(const TableKey& o) const {
    return std::tie(type, index, dtype, rotary_dim, theta, scaling, factor, original_max_seq_len) <
           std::tie(o.type, o.index, o.dtype, o.rotary_dim, o.theta, o.scaling, o.factor,
                    o.original_max_seq_len);
  }
};

// YaRN's pair index at which a pair turns `rotations` times over `length` tokens (the paper's
// inverse of r(d) = L / λ_d), unrounded.
double yarn_correction_pair(double rotations, int64_t rotary_dim, double theta, int64_t length) {
  constexpr double kPi = 3.14159265358979323846;
  return static_cast<double>(rotary_dim) *
         std::log(static_cast<double>(length) / (rotations * 2.0 * kPi)) / (2.0 * std::log(theta));
}

// Pairs below the β_fast = 32 boundary keep their frequency (they turn many times within the
// original length), pairs above β_slow = 1 are interpolated by the factor, and a linear ramp
// blends the pairs in between.
at::Tensor yarn_inverse_frequencies(const at::Tensor& extrapolated, int64_t rotary_dim,
                                    double theta, const RopeScaling& s) {
  const int64_t half = rotary_dim / 2;
  const double low = std::max(
      std::floor(yarn_correction_pair(32.0, rotary_dim, theta, s.original_max_seq_len)), 0.0);
  double high =
      std::min(std::ceil(yarn_correction_pair(1.0, rotary_dim, theta, s.original_max_seq_len)),
               static_cast<double>(rotary_dim - 1));
  if (high == low) high += 0.001;
  const at::Tensor ramp =
      at::arange(0, half, extrapolated.options()).sub(low).div(high - low).clamp(0.0, 1.0);
  const at::Tensor interpolated = extrapolated / s.factor;
  return interpolated * ramp + extrapolated * (1.0 - ramp);
}

// Positions 0 .. length-1 in float64 on the CPU.
RotaryTables compute_tables(const at::Device& device, at::ScalarType compute, int64_t length,
                            int64_t rotary_dim, double theta, const RopeScaling& scaling) {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  const at::Tensor inv_freq = rope_inverse_frequencies(rotary_dim, theta, scaling);
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

RopeScaling RopeScaling::parse(const std::string& kind, double factor,
                               int64_t original_max_seq_len) {
  RopeScaling s;
  s.factor = factor;
  s.original_max_seq_len = original_max_seq_len;
  if (kind == "none") {
    s.kind = Kind::none;
  } else if (kind == "linear") {
    s.kind = Kind::linear;
  } else if (kind == "ntk") {
    s.kind = Kind::ntk;
  } else if (kind == "yarn") {
    s.kind = Kind::yarn;
  } else {
    throw Error("attention.rope_scaling: unknown kind '" + kind +
                "'; allowed: none, linear, ntk, yarn");
  }
  if (s.kind != Kind::none && !(factor >= 1.0))
    throw Error(format("attention.rope_scaling_factor = {} must be >= 1", factor));
  if (s.kind == Kind::yarn && original_max_seq_len <= 0)
    throw Error("attention.rope_scaling: yarn needs attention.rope_original_max_seq_len > 0");
  return s;
}

double RopeScaling::logit_multiplier() const {
  if (kind != Kind::yarn || factor <= 1.0) return 1.0;
  const double mscale = 0.1 * std::log(factor) + 1.0;
  return mscale * mscale;
}

at::Tensor rope_inverse_frequencies(int64_t rotary_dim, double theta, const RopeScaling& scaling) {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  if (scaling.kind == RopeScaling::Kind::ntk) {
    if (rotary_dim <= 2)
      throw Error("attention.rope_scaling ntk needs more than 2 rotary dims, got " +
                  std::to_string(rotary_dim));
    const double r = static_cast<double>(rotary_dim);
    theta *= std::pow(scaling.factor, r / (r - 2.0));
  }
  // The same expression Rotary always used, so unscaled angles stay bit-identical to the old ones.
  const at::Tensor unscaled = at::pow(
      theta, at::arange(0, rotary_dim / 2, f64).mul(-2.0 / static_cast<double>(rotary_dim)));
  switch (scaling.kind) {
    case RopeScaling::Kind::linear:
      return unscaled / scaling.factor;
    case RopeScaling::Kind::yarn:
      return yarn_inverse_frequencies(unscaled, rotary_dim, theta, scaling);
    default:
      return unscaled;
  }
}

RotaryTables rotary_tables(const at::Device& device, at::ScalarType compute, int64_t length,
                           int64_t rotary_dim, double theta, const RopeScaling& scaling) {
  // Never destroyed: CUDA tables must not be freed after the CUDA runtime has shut down.
  static auto* const tables = new std::map<TableKey, RotaryTables>();
  static auto* const mutex = new std::mutex();
  const TableKey key{device.type(), device.index(), compute,        rotary_dim,
                     theta,         scaling.kind,   scaling.factor, scaling.original_max_seq_len};
  const std::lock_guard<std::mutex> lock(*mutex);
  RotaryTables& entry = (*tables)[key];
  if (!entry.cos.defined() || entry.cos.size(0) < length) {
    int64_t capacity = 4096;
    while (capacity < length) capacity *= 2;
    entry = compute_tables(device, compute, capacity, rotary_dim, theta, scaling);
  }
  return entry;
}

Rotary::Rotary(int64_t rotary_dim, double theta, const RopeScaling& scaling)
    : rotary_dim_(rotary_dim), theta_(theta), scaling_(scaling) {
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
  const RotaryTables t =
      rotary_tables(x.device(), compute, offset + seq, rotary_dim_, theta_, scaling_);
#ifdef CCA_WITH_CUDA
  if (x.is_cuda() && fused_dtype(x.scalar_type()))
    return RotaryFunction::apply(x, t.cos, t.sin, offset, rotary_dim_);
#endif
  const int64_t half = rotary_dim_ / 2;
  return rotate_plain(x, t.cos.narrow(0, offset, seq).view({1, seq, 1, half}),
                      t.sin.narrow(0, offset, seq).view({1, seq, 1, half}), rotary_dim_);
}

at::Tensor Rotary::apply(const at::Tensor& x, const at::Tensor& positions, int64_t limit) const {
  if (rotary_dim_ == 0) return x;
  TORCH_CHECK(x.dim() == 4 && x.size(3) >= rotary_dim_,
              "Rotary::apply expects [B, S, H, D] with D >= ", rotary_dim_);
  TORCH_CHECK(
      positions.dim() == 2 && positions.size(0) == x.size(0) && positions.size(1) == x.size(1),
      "Rotary::apply: positions must be [B, S] like x");
  const int64_t B = x.size(0), seq = x.size(1), half = rotary_dim_ / 2;
  const at::ScalarType compute = x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  // Positions inside a row never reach the row's length (or `limit`), so no host read of their
  // maximum.
  const RotaryTables t =
      rotary_tables(x.device(), compute, limit > 0 ? limit : seq, rotary_dim_, theta_, scaling_);
  const at::Tensor rows = positions.reshape({-1});
  return rotate_plain(x, t.cos.index_select(0, rows).view({B, seq, 1, half}),
                      t.sin.index_select(0, rows).view({B, seq, 1, half}), rotary_dim_);
}

}  // namespace cca
