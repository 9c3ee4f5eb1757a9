// RMSNorm on the fp32 residual stream, writing the normalised rows straight in the dtype the next
// GEMM reads (bf16 under autocast). LibTorch needs rms_norm plus a cast each way, and its weight
// gradient is a separate column reduction that rereads the gradient and the input.
#pragma once

#include <ATen/ATen.h>

namespace cca::kernels {

// The widest row the kernels take (1024 threads × 16 columns each).
inline constexpr int64_t kRmsNormMaxDim = 16384;

struct RmsNormForward {
  at::Tensor out;   // [M, E] in out_dtype
  at::Tensor rstd;  // [M] fp32: 1 / sqrt(mean(x²) + eps)
};

// x: CUDA fp32 [M, E] contiguous, E ≤ kRmsNormMaxDim; weight: fp32 [E].
// out = x · rstd · weight, computed in fp32 and rounded once to out_dtype (bf16, fp16 or fp32).
RmsNormForward rms_norm_forward_cuda(const at::Tensor& x, const at::Tensor& weight, double eps,
                                     at::ScalarType out_dtype);

struct RmsNormBackward {
  at::Tensor grad_x;       // [M, E] fp32
  at::Tensor grad_weight;  // [E] fp32, summed in a fixed order (bit-reproducible)
};

// grad_out: [M, E] contiguous in the forward's out dtype; x, weight, rstd as saved by the forward.
RmsNormBackward rms_norm_backward_cuda(const at::Tensor& grad_out, const at::Tensor& x,
                                       const at::Tensor& weight, const at::Tensor& rstd);

}  // namespace cca::kernels
