// SwiGLU's gate: silu(gate) · up, the elementwise middle of the FFN.
#pragma once

#include <ATen/ATen.h>

namespace cca {

// On CUDA, for contiguous gate and up of one dtype (what two bf16 GEMMs give), one fused kernel
// forward and one backward (kernels/swiglu.h); elsewhere LibTorch's silu and mul.
at::Tensor swiglu_product(const at::Tensor& gate, const at::Tensor& up);

}  // namespace cca
