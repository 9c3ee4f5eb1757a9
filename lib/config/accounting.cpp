#include "config/accounting.h"

namespace cca {
namespace {

int64_t swiglu_params(int64_t E, int64_t hidden) {
  return 3 * E * hidden;
}

}  // namespace

AttentionParams attention_params(const AttentionGeometry& g) {
  return g.variant().params(g);
}

double attention_forward_flops_per_token(const AttentionGeometry& g, int64_t context, bool causal) {
  return g.variant().forward_flops_per_token(g, context, causal);
}

double attention_decode_flops(const AttentionGeometry& g, int64_t context) {
  return g.variant().decode_flops(g, context);
}

int64_t kv_cache_elements_per_token(const AttentionGeometry& g) {
  return g.variant().kv_elements_per_token(g);
}

int64_t decode_cache_elements(const AttentionGeometry& g, int64_t context) {
  const AttentionVariant& v = g.variant();
  return v.kv_elements_per_token(g) * v.cached_tokens(g, context) + v.decode_state_elements(g);
}

int64_t decode_state_elements(const AttentionGeometry& g) {
  return g.variant().decode_state_elements(g);
}

ModelCounts count_model(const Config& c) {
  const AttentionGeometry g = attention_geometry(c);
  const int64_t E = c.model.d_model;
  const int64_t V = c.model.vocab_size;
  ModelCounts m;
  m.attention_params_per_layer = attention_params(g).total();
  m.embedding_params = V * E * (c.model.tie_embeddings ? 1 : 2);
  m.total_params = m.embedding_params + E;  // + final norm
  m.active_params = m.total_params;
  m.active_matmul_params = V * E;  // LM head
  const int64_t dense_ffn = swiglu_params(E, dense_ffn_hidden(c));
  const int64_t expert = swiglu_params(E, expert_ffn_hidden(c));
  for (int64_t layer = 0; layer < c.model.n_layers; ++layer) {
    const int64_t common = m.attention_params_per_layer + 2 * E;  // + two RMSNorms
    m.total_params += common;
    m.active_params += common;
    m.active_matmul_params += attention_params(g).linear;
    m.hidden_matrix_params += attention_params(g).linear;
    if (!is_moe_layer(c, layer)) {
      m.hidden_matrix_params += dense_ffn;
      m.total_params += dense_ffn;
      m.active_params += dense_ffn;
      m.active_matmul_params += dense_ffn;
      continue;
    }
    const int64_t router = E * c.moe.n_experts;
    const int64_t shared = c.moe.shared_experts * expert;
    m.total_params += router + c.moe.n_experts * expert + shared;
    m.hidden_matrix_params += c.moe.n_experts * expert + shared;
    const int64_t active = router + c.moe.top_k * expert + shared;
    m.active_params += active;
    m.active_matmul_params += active;
  }
  return m;
}

double training_flops_per_token(const Config& c) {
  const AttentionGeometry g = attention_geometry(c);
  const ModelCounts m = count_model(c);
  const double attention_linear = static_cast<double>(attention_params(g).linear);
  const double per_layer_extra =
      attention_forward_flops_per_token(g, c.train.seq_len, true) - 2.0 * attention_linear;
  const double forward = 2.0 * static_cast<double>(m.active_matmul_params) +
                         static_cast<double>(c.model.n_layers) * per_layer_extra;
  return 3.0 * forward;
}

}  // namespace cca
