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

  // x: [B, S, H, D] with D >= rotary_dim; token s sits at absolute position offset + s.
  // Angles are computed in float64 and applied in x's dtype (float32 for bf16 inputs).
  at::Tensor apply(const at::Tensor& x, int64_t offset) const;
  int64_t rotary_dim() const { return rotary_dim_; }

 private:
  int64_t rotary_dim_ = 0;
  double theta_ = 10000.0;
};

}  // namespace cca
