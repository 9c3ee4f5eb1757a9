// The fused CUDA version of cca_prologue (cca_reference.h): the same inputs and outputs, computed
// by kernels/cca_prologue_*.cu and differentiable through one autograd function. The CCA module
// uses it on CUDA when attention.cca.kernels = auto and cca_fused_supported() says yes; the
// reference path stays the definition and runs everywhere else.
#pragma once

#include <ATen/ATen.h>

#include "attention/cca_reference.h"
#include "config/geometry.h"

namespace cca {

// Whether this build and these tensors can take the fused path: kernels compiled, q0 on CUDA in
// bf16 / fp16 / fp32, head_dim 64 / 128 / 256, conv kernel sizes up to 4. Gradients through a
// continued sequence (a cache's conv history) are not supported: the module keeps the reference
// path for chunked prefill under autograd.
bool cca_fused_supported(const CcaGeometry& g, const at::Tensor& q0);

// θ^{-2i/r} for i < r/2 in float64 on `device`, as Rotary computes them; the module keeps one.
at::Tensor cca_rope_inverse_frequencies(int64_t rope_dim, double theta, const RopeScaling& scaling,
                                        const at::Device& device);

// cca_prologue on the fused kernels for fresh sequences (a cached one takes cca_step_fused).
// `inv_freq` comes from cca_rope_inverse_frequencies (ignored when g.rope_dim = 0). No decode
// states are made. Gradients flow to the projections, conv weights and biases and key_multiplier.
// With `documents` (on q0's device) the convs and the value shift restart at every document, and
// RoPE too when documents->reset_positions, exactly as cca_prologue(..., documents) does.
CcaPrologueOutput cca_prologue_fused(const CcaGeometry& g, const at::Tensor& inv_freq,
                                     const CcaConvWeights& w, const at::Tensor& key_multiplier,
                                     const CcaProjections& p, const Documents* documents = nullptr);

// The conv weights and key multiplier in the kernels' layouts and the activations' dtype. A
// training step prepares them inside its autograd function; generation prepares them once per
// weight update (cca.cpp) instead of re-laying them out every token.
struct CcaPreparedWeights {
  at::Tensor depthwise_taps, depthwise_bias, grouped_taps, grouped_bias, key_multiplier;
};
CcaPreparedWeights cca_prepare_weights(const CcaGeometry& g, const CcaConvWeights& w,
                                       const at::Tensor& key_multiplier, at::ScalarType dtype);

// One chunk of a cached sequence without autograd, in a single kernel launch: returns q̂
// [B, S, n_q, d], writes k̂ and ṽ straight into the cache's next KV slots, replaces its conv and
// shift states and advances its length. Needs cca_fused_supported() and no grad mode.
at::Tensor cca_step_fused(const CcaGeometry& g, const at::Tensor& inv_freq,
                          const CcaPreparedWeights& w, const CcaProjections& p, CcaCache& cache);

}  // namespace cca
