// Rotary position embedding with rotate-half pairing (dim i rotates with i + r/2) on the first
// `rotary_dim` dims of each head; the rest pass through (partial RoPE).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace cca {

// Context extension (attention.rope_scaling): how a model trained at original_max_seq_len tokens
// stretches its rotary frequencies by `factor`. linear: position interpolation (every frequency
// / factor); ntk: NTK-aware base θ·factor^{r/(r-2)}; yarn: per-pair ramp between extrapolated and
// interpolated frequencies (β_fast 32, β_slow 1 rotations over the original length) plus the
// attention temperature, all as published (Peng et al. 2023, "YaRN").
struct RopeScaling {
  enum class Kind { none, linear, ntk, yarn };
  Kind kind = Kind::none;
  double factor = 1.0;
  int64_t original_max_seq_len = 0;

  // Parses attention.rope_scaling ("none" | "linear" | "ntk" | "yarn").
  static RopeScaling parse(const std::string& kind, double factor, int64_t original_max_seq_len);
  // YaRN's multiplier of the attention logits, (0.1·ln factor + 1)²: the published √(1/t) scales
  // both q and k. 1 for the other kinds.
  double logit_multiplier() const;
};

// The inverse frequencies of the r/2 rotate-half pairs, float64 on the CPU: θ^{-2i/r} scaled as
// `scaling` says. Rotary's tables and the fused CCA prologue both rotate by these.
at::Tensor rope_inverse_frequencies(int64_t rotary_dim, double theta, const RopeScaling& scaling);

class Rotary {
 public:
  Rotary() = default;
  Rotary(int64_t rotary_dim, double theta, const RopeScaling& scaling = {});

  // x: [B, S, H, D] with D >= rotary_dim, any strides; token s sits at absolute position
  // offset + s. Angles are computed in float64 (once, see rotary_tables) and applied in x's
  // dtype (float32 for bf16/fp16 inputs, rounded back at the end). Returns a new contiguous
  // tensor (x itself when rotary_dim is 0). CUDA bf16/fp16/fp32 inputs take one fused kernel per
  // direction (kernels/rope.cu); CPU and float64 inputs take plain LibTorch ops.
  at::Tensor apply(const at::Tensor& x, int64_t offset) const;
  // The same with each token at its own position: positions [B, S] (int64, on x's device, each
  // below S), e.g. restarting at every document (ops/documents.h). Plain LibTorch ops.
  // `limit` bounds the positions (0: x's length), e.g. a sequence split over ranks.
  at::Tensor apply(const at::Tensor& x, const at::Tensor& positions, int64_t limit = 0) const;
  int64_t rotary_dim() const { return rotary_dim_; }

 private:
  int64_t rotary_dim_ = 0;
  double theta_ = 10000.0;
  RopeScaling scaling_;
};

// cos and sin of position·(inverse frequency i), [L, r/2] for positions 0 .. L-1 with L >= length,
// in `compute` (float32, or float64 for float64 inputs) on `device`. Computed once in float64 on
// the CPU per (device, compute, rotary_dim, theta, scaling) and kept for the process; a longer
// length recomputes the table at the next power of two (row p never changes).
struct RotaryTables {
  at::Tensor cos, sin;
};
RotaryTables rotary_tables(const at::Device& device, at::ScalarType compute, int64_t length,
                           int64_t rotary_dim, double theta, const RopeScaling& scaling = {});

}  // namespace cca
