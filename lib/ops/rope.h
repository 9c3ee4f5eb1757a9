// Rotary position embedding with rotate-half pairing (dim i rotates with i + r/2) on the first
// `rotary_dim` dims of each head; the rest pass through (partial RoPE).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace cca {

class Rotary {
 public:
  Rotary() = default;
  Rotary(int64_t rotary_dim, double theta);

  // x: [B, S, H, D] with D >= rotary_dim, any strides; token s sits at absolute position
  // offset + s. Angles are computed in float64 (once, see rotary_tables) and applied in x's
  // dtype (float32 for bf16/fp16 inputs, rounded back at the end). Returns a new contiguous
  // tensor (x itself when rotary_dim is 0). CUDA bf16/fp16/fp32 inputs take one fused kernel per
  // direction (kernels/rope.cu); CPU and float64 inputs take plain LibTorch ops.
  at::Tensor apply(const at::Tensor& x, int64_t offset) const;
  // The same with each token at its own position: positions [B, S] (int64, on x's device, each
  // below S), e.g. restarting at every document (ops/documents.h). Plain LibTorch ops.
  at::Tensor apply(const at::Tensor& x, const at::Tensor& positions) const;
  int64_t rotary_dim() const { return rotary_dim_; }

 private:
  int64_t rotary_dim_ = 0;
  double theta_ = 10000.0;
};

// cos and sin of position·θ^{-2i/r}, [L, r/2] for positions 0 .. L-1 with L >= length, in
// `compute` (float32, or float64 for float64 inputs) on `device`. Computed once in float64 on the
// CPU per (device, compute, rotary_dim, theta) and kept for the process; a longer length
// recomputes the table at the next power of two (row p never changes).
struct RotaryTables {
  at::Tensor cos, sin;
};
RotaryTables rotary_tables(const at::Device& device, at::ScalarType compute, int64_t length,
                           int64_t rotary_dim, double theta);

}  // namespace cca
