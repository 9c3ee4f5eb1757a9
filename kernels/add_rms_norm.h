// The residual add and the RMSNorm after it in one pass each way: h = residual + delta in fp32,
// y = h / sqrt(mean(h²) + eps) · w in delta's dtype. One warp per row with 16-byte loads (rows
// up to kAddRmsNormMaxDim wide, E divisible by 4); the weight gradient is reduced in a fixed
// order, so it is bit-reproducible.
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace cca::kernels {

inline constexpr int64_t kAddRmsNormMaxDim = 2048;

// Whether the kernels take rows of this width and these dtypes: E % 4 == 0, E ≤ 2048, residual
// fp32, delta (if defined) and the output of one dtype among bf16, fp16, fp32.
bool add_rms_norm_supported(int64_t dim, const at::Tensor& delta, at::ScalarType out_dtype);

struct AddRmsNormForward {
  at::Tensor sum;   // [M, E] fp32 = residual + delta (undefined without delta: residual is h)
  at::Tensor out;   // [M, E] in out_dtype
  at::Tensor rstd;  // [M] fp32
};

// residual: CUDA fp32 [M, E] contiguous; delta: undefined or [M, E] contiguous in out_dtype;
// weight: fp32 [E].
AddRmsNormForward add_rms_norm_forward_cuda(const at::Tensor& residual, const at::Tensor& delta,
                                            const at::Tensor& weight, double eps,
                                            at::ScalarType out_dtype);

struct AddRmsNormBackward {
  at::Tensor grad_sum;     // [M, E] fp32: grad_through + the norm's input gradient
  at::Tensor grad_delta;   // [M, E] the same values in delta_dtype (undefined if not asked)
  at::Tensor grad_weight;  // [E] fp32
};

// grad_out: [M, E] in the forward's out dtype; h: the fp32 rows that were normalised;
// grad_through: undefined or fp32 [M, E], the gradient reaching h from its other uses.
AddRmsNormBackward add_rms_norm_backward_cuda(const at::Tensor& grad_out, const at::Tensor& h,
                                              const at::Tensor& weight, const at::Tensor& rstd,
                                              const at::Tensor& grad_through,
                                              std::optional<at::ScalarType> delta_dtype);

}  // namespace cca::kernels
