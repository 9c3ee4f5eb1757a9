// Fused rotary position embedding (rotate-half pairing, partial RoPE) on CUDA: forward and
// backward in one kernel each, reading cos/sin from a precomputed float32 table.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace cca::kernels {

// x: CUDA [B, S, H, D] in bf16, fp16 or fp32, any strides; cos, sin: contiguous float32
// [L, rotary_dim / 2] with L >= offset + S (row p holds position p). Returns a new contiguous
// [B, S, H, D] tensor in x's dtype: the first rotary_dim dims of each head rotated by the angles
// of positions offset .. offset + S - 1, the rest copied. With `inverse`, rotates the other way
// (the backward: the transpose of a rotation). Products and sums are rounded one by one in
// float32, as the plain-ops path computes them.
at::Tensor rope_apply_cuda(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                           int64_t offset, int64_t rotary_dim, bool inverse);

}  // namespace cca::kernels
