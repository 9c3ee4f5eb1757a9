// SwiGLU's elementwise part, silu(gate) · up, in one kernel each way. LibTorch runs it as silu,
// mul (forward) and mul, silu_backward, silu, mul (backward): six passes over [tokens, hidden]
// where these need one.
#pragma once

#include <ATen/ATen.h>

#include <utility>

namespace cca::kernels {

// gate, up: CUDA, same shape and dtype (bf16, fp16 or fp32), contiguous. Returns silu(gate)·up,
// computed in fp32 and rounded once.
at::Tensor swiglu_forward_cuda(const at::Tensor& gate, const at::Tensor& up);

// The gradients of silu(gate)·up for grad_out (same shape, dtype, contiguous):
// grad_gate = grad·up·σ(g)·(1 + g·(1 − σ(g))), grad_up = grad·silu(g).
std::pair<at::Tensor, at::Tensor> swiglu_backward_cuda(const at::Tensor& grad_out,
                                                       const at::Tensor& gate,
                                                       const at::Tensor& up);

}  // namespace cca::kernels
