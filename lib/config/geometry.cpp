#include "config/geometry.h"

#include <cmath>

namespace cca {
namespace {

int64_t resolved_head_dim(const Config& c) {
  const AttentionConfig& a = c.attention;
  if (a.head_dim > 0) return a.head_dim;
  return a.n_heads > 0 ? c.model.d_model / a.n_heads : 0;
}

}  // namespace

int64_t AttentionGeometry::conv_padding() const {
  if (convs == 0) return 0;
  return (conv_kernel_0 - 1) + (convs == 2 ? conv_kernel_1 - 1 : 0);
}

AttentionGeometry attention_geometry(const Config& c) {
  const AttentionConfig& a = c.attention;
  AttentionGeometry g;
  g.kind = a.kind;
  g.model_dim = c.model.d_model;
  g.qk_norm = a.qk_norm;
  if (a.kind == "mla") {
    g.n_q_heads = a.n_heads;
    g.n_kv_heads = 1;
    g.q_lora_rank = a.mla.q_lora_rank.value_or(0);
    g.kv_lora_rank = a.mla.kv_lora_rank;
    g.qk_nope_dim = a.mla.qk_nope_head_dim;
    g.rope_dim = a.mla.qk_rope_head_dim;
    g.head_dim = g.qk_nope_dim + g.rope_dim;
    g.v_head_dim = a.mla.v_head_dim;
    return g;
  }
  g.head_dim = resolved_head_dim(c);
  g.v_head_dim = g.head_dim;
  g.rope_dim =
      static_cast<int64_t>(std::llround(a.rope_fraction * static_cast<double>(g.head_dim)));
  if (g.is_cca()) {
    g.q_compression = a.cca.q_compression;
    g.kv_compression = a.cca.kv_compression > 0 ? a.cca.kv_compression : a.cca.q_compression;
    const int64_t width_q = g.q_compression * g.head_dim;
    const int64_t width_k = g.kv_compression * g.head_dim;
    g.n_q_heads = width_q > 0 ? c.model.d_model / width_q : 0;
    g.n_kv_heads = width_k > 0 ? c.model.d_model / width_k : 0;
    g.convs = a.cca.convs;
    g.conv_kernel_0 = a.cca.conv_kernel_0;
    g.conv_kernel_1 = a.cca.conv_kernel_1;
    g.qk_mean = a.cca.qk_mean;
    g.value_shift = a.cca.value_shift;
    return g;
  }
  g.n_q_heads = a.n_heads;
  g.n_kv_heads = (a.kind == "gqa" && a.n_kv_heads > 0) ? a.n_kv_heads : a.n_heads;
  return g;
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
