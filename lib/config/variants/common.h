// What several descriptors share: the rules and accounting of variants whose attention runs on
// per-head queries, keys and values (mha, gqa, cca, ccgqa, swa), and helpers for the rest.
#pragma once

#include <cstdint>
#include <string>

#include "config/attention_variant.h"

namespace cca::variants {

// attention.head_dim, or model.d_model / attention.n_heads when it is 0 (0 when n_heads is 0).
int64_t resolved_head_dim(const Config& c);
// The common fields of a per-head geometry: model_dim, head_dim = v_head_dim, rope_dim, qk_norm,
// the variant's settings; heads are left to the caller.
AttentionGeometry per_head_geometry(const Config& c);

// model.d_model must split into attention.n_heads heads when head_dim is automatic.
void check_head_split(const Config& c, RuleSink& rules);
// attention.qk_norm set for a variant that normalises its own latents.
void reject_qk_norm(const Config& c, RuleSink& rules);
// attention.mha.convs or value_shift set for a variant that does not take them (validate.cpp runs
// it for every kind whose descriptor says !uses_head_convs()).
void reject_head_convs(const Config& c, RuleSink& rules);
// rope_fraction · head_dim must be an even whole number (rotate-half pairing).
void check_rope_fraction(const Config& c, RuleSink& rules);

// q, k, v and o projection weights: 2·E·W_q + 2·E·W_kv.
int64_t projection_params(const AttentionGeometry& g);
// Keys each query visits at `context` (half of them for a causal kernel).
double visited_keys(int64_t context, bool causal);
// 2 · keys · query heads · (q/k dims + v dims): the score and value products per token.
double score_flops(const AttentionGeometry& g, double keys);
// Elements a per-head KV cache holds per token: keys and values of every kv head.
int64_t per_head_kv_elements(const AttentionGeometry& g);

// CCA's causal convolutions on q‖k (spec §2.2 step 2) as the accounting sees them: a depthwise
// conv (kernel k0) over all M channels, then, with convs = 2, a grouped conv (kernel k1) whose
// groups are the heads, each a full head_dim × head_dim mix per tap. cca and ccgqa run it on their
// latent heads; mha and gqa on their own heads with attention.mha.convs.
struct ConvStack {
  int64_t convs = 0;     // 0 = none, 1 = depthwise only, 2 = depthwise then grouped
  int64_t kernel_0 = 0;  // k0
  int64_t kernel_1 = 0;  // k1
  int64_t channels = 0;  // M = (query heads + key heads) · head_dim
  int64_t head_dim = 0;

  // The causal left pad of the stack, also the decode conv state's length P.
  int64_t padding() const;
  // Weights and biases of both convs.
  int64_t params() const;
  // Multiply-accumulates per token in training, and per decoded token (the depthwise conv is
  // re-evaluated at k1 positions there).
  double macs_per_token() const;
  double decode_macs_per_token() const;
};

// "gqa: 12 query heads, 4 kv heads (group 3), head_dim 64, rope dims 64"
std::string heads_summary(const AttentionGeometry& g);
// "gqa 12q/4kv ×64"
std::string heads_label(const AttentionGeometry& g);

}  // namespace cca::variants
