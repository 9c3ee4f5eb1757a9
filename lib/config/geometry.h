// The shapes a validated Config resolves to (automatic widths filled in). Models and accounting
// read these, never the raw keys, so "0 = automatic" is decided in one place: for attention, by the
// variant's descriptor (attention_variant.h).
#pragma once

#include <cstdint>
#include <string>

#include "config/config.h"

namespace cca {

class AttentionVariant;

// What every attention variant has: heads and widths. What only one variant has (CCA's convs,
// MLA's latent ranks, a window) stays in `settings`, read through that variant's own typed view
// (lib/config/variants/<name>.h).
struct AttentionGeometry {
  std::string kind;        // attention.kind: the registered variant's name
  int64_t model_dim = 0;   // E
  int64_t n_q_heads = 0;   // query heads (latent heads for cca/ccgqa)
  int64_t n_kv_heads = 0;  // key/value heads (latent for cca/ccgqa; 1 shared latent for mla)
  int64_t head_dim = 0;    // q/k dims per head
  int64_t v_head_dim = 0;  // value dims per head
  int64_t rope_dim = 0;    // rotated dims per head (mla: the shared rope key width)
  bool qk_norm = false;
  VariantSettings settings;  // the variant's own keys, automatic values resolved

  int64_t group_size() const { return n_kv_heads > 0 ? n_q_heads / n_kv_heads : 0; }
  const AttentionVariant& variant() const;
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
