// The attention and FFN shapes a validated Config resolves to (automatic widths filled in,
// CCA compression turned into latent head counts). Models and accounting read these, never the
// raw keys, so "0 = automatic" is decided in one place.
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"

namespace cca {

struct AttentionGeometry {
  std::string kind;    // mha | gqa | mla | cca | ccgqa
  int64_t model_dim;   // E
  int64_t n_q_heads;   // query heads (latent heads for cca/ccgqa)
  int64_t n_kv_heads;  // key/value heads (latent for cca/ccgqa; 1 shared latent for mla)
  int64_t head_dim;    // d for mha/gqa/cca/ccgqa; q/k dim (nope + rope) for mla
  int64_t rope_dim;    // rotated dims per head (mla: the shared rope key width)
  bool qk_norm = false;
  // MLA
  int64_t q_lora_rank = 0;  // 0 = full-rank query
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_dim = 0;
  int64_t v_head_dim = 0;  // value dim per head (= head_dim except for mla)
  // CCA / CCGQA
  int64_t q_compression = 1;
  int64_t kv_compression = 1;
  int64_t convs = 0;
  int64_t conv_kernel_0 = 0;
  int64_t conv_kernel_1 = 0;
  bool qk_mean = false;
  bool value_shift = false;

  bool is_cca() const { return kind == "cca" || kind == "ccgqa"; }
  int64_t group_size() const { return n_kv_heads > 0 ? n_q_heads / n_kv_heads : 0; }
  int64_t q_latent_width() const { return n_q_heads * head_dim; }                 // W_q
  int64_t kv_latent_width() const { return n_kv_heads * head_dim; }               // W_k
  int64_t conv_channels() const { return q_latent_width() + kv_latent_width(); }  // M
  // Causal left pad of the conv stack, also the decode conv-state length P.
  int64_t conv_padding() const;
};

AttentionGeometry attention_geometry(const Config& config);

// Whether layer `index` (0-based) uses the MoE FFN.
bool is_moe_layer(const Config& config, int64_t index);
int64_t moe_layer_count(const Config& config);
int64_t dense_ffn_hidden(const Config& config);
int64_t expert_ffn_hidden(const Config& config);
// The longest sequence the model is built for.
int64_t max_sequence_length(const Config& config);

}  // namespace cca
