// The LM head and its cross-entropy in chunks of tokens, so the [tokens, vocab] logits never
// exist in full (at vocab 50k and 16k tokens they would be 3.3 GB in fp32, plus as much again
// for their gradient). In training the gradient is computed chunk by chunk during the forward
// pass and only scaled in backward: the chunk's logits are freed before the next is made.
#pragma once

#include <ATen/ATen.h>

namespace cca {

struct CrossEntropySums {
  at::Tensor objective;      // ce_sum + z_weight · z_sum, differentiable w.r.t. hidden and weight
  at::Tensor cross_entropy;  // Σ over valid tokens of −log p(target) (no gradient)
  at::Tensor z;              // Σ over valid tokens of logsumexp(logits)² (no gradient)
};

// hidden [N, E], weight [V, E] (the head: logits = hidden · weightᵀ), targets [N] with −1 for
// tokens that do not count. Logits are computed in autocast's dtype when autocast is on (else in
// hidden's dtype) and reduced in fp32 (fp64 for fp64 inputs). chunk_tokens ≤ 0 picks a chunk
// whose fp32 logits take about 1 GiB.
CrossEntropySums linear_cross_entropy(const at::Tensor& hidden, const at::Tensor& weight,
                                      const at::Tensor& targets, double z_weight,
                                      int64_t chunk_tokens = 0);

}  // namespace cca
