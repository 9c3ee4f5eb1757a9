#include "config/geometry.h"

#include "config/attention_variant.h"

namespace cca {
const AttentionVariant& AttentionGeometry::variant() const {
  return attention_variant(kind);
}

AttentionGeometry attention_geometry(const Config& c) {
  return attention_variant(c.attention.kind).geometry(c);
}

bool is_moe_layer(const Config& c, int64_t index) {
  if (c.moe.n_experts == 0 || index < c.moe.first_dense_layers) return false;
  return (index - c.moe.first_dense_layers) % c.moe.every == 0;
}

int64_t moe_layer_count(const Config& c) {
  int64_t count = 0;
  for (int64_t i = 0; i < c.model.n_layers; ++i) count += is_moe_layer(c, i) ? 1 : 0;
  return count;
}

int64_t dense_ffn_hidden(const Config& c) {
  if (c.model.ffn_hidden > 0) return c.model.ffn_hidden;
  const int64_t raw = (8 * c.model.d_model + 2) / 3;
  const int64_t m = c.model.ffn_multiple_of;
  return (raw + m - 1) / m * m;
}

int64_t expert_ffn_hidden(const Config& c) {
  return c.moe.expert_hidden > 0 ? c.moe.expert_hidden : dense_ffn_hidden(c);
}

int64_t max_sequence_length(const Config& c) {
  return c.model.max_seq_len > 0 ? c.model.max_seq_len : c.train.seq_len;
}

}  // namespace cca
