// Parameters, FLOPs and KV-cache sizes from a config, per ../shared/docs/cca-spec.md §5.
// Conventions: 2 FLOPs per multiply-accumulate; norms, softmax, RoPE and biases' FLOPs ignored;
// parameter counts are exact for the model cca-train builds (norm weights and biases included).
// The attention layer's numbers come from its variant's descriptor (attention_variant.h); the
// functions below are the shorthand every caller uses.
#pragma once

#include <cstdint>

#include "config/attention_variant.h"
#include "config/config.h"
#include "config/geometry.h"

namespace cca {

AttentionParams attention_params(const AttentionGeometry& g);
// Forward FLOPs per token of one attention layer at context `context`: projections, CCA convs
// and the score/value products. `causal` halves the context term (a causal kernel skips the
// masked half); with causal = false this is spec §5's Table II per token.
double attention_forward_flops_per_token(const AttentionGeometry& g, int64_t context, bool causal);
// FLOPs to decode one token with `context` cached tokens (absorbed form for MLA).
double attention_decode_flops(const AttentionGeometry& g, int64_t context);

// Elements cached per token per layer (grows with the sequence, up to a window if any).
int64_t kv_cache_elements_per_token(const AttentionGeometry& g);
// Elements one layer's decode state holds after `context` tokens: the cache plus the constant
// state.
int64_t decode_cache_elements(const AttentionGeometry& g, int64_t context);
// Constant per-sequence decode state per layer (CCA conv state + value-shift state).
int64_t decode_state_elements(const AttentionGeometry& g);

struct ModelCounts {
  int64_t total_params = 0;
  int64_t active_params = 0;     // per token (MoE: top-k routed + shared experts)
  int64_t embedding_params = 0;  // token embedding (+ untied LM head)
  int64_t attention_params_per_layer = 0;
  // Attention and FFN projection matrices and expert matrices (not embeddings, LM head, norms,
  // biases, routers or CCA's convolutions and temperatures): what optim.kind muon orthogonalises.
  int64_t hidden_matrix_params = 0;
  // Weights multiplied per token in the forward pass, LM head included (the 6·N of MFU).
  int64_t active_matmul_params = 0;
};

ModelCounts count_model(const Config& config);
// Training FLOPs per token: 3 × forward (forward + backward), causal attention at seq_len.
double training_flops_per_token(const Config& config);

}  // namespace cca
