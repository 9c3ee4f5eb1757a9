#include "model/accounting.h"

namespace cca {
namespace {

int64_t conv_weight_params(const AttentionGeometry& g) {
  const int64_t M = g.conv_channels();
  int64_t params = 0;
  if (g.convs >= 1) params += M * (g.conv_kernel_0 + 1);               // depthwise + bias
  if (g.convs >= 2) params += M * (g.head_dim * g.conv_kernel_1 + 1);  // grouped + bias
  return params;
}

// Multiply-accumulates per token in the conv stack.
double conv_macs_per_token(const AttentionGeometry& g) {
  const double M = static_cast<double>(g.conv_channels());
  double macs = 0;
  if (g.convs >= 1) macs += M * g.conv_kernel_0;
  if (g.convs >= 2) macs += M * g.head_dim * g.conv_kernel_1;
  return macs;
}

int64_t swiglu_params(int64_t E, int64_t hidden) {
  return 3 * E * hidden;
}

}  // namespace

AttentionParams attention_params(const AttentionGeometry& g) {
  const int64_t E = g.model_dim;
  AttentionParams p;
  if (g.kind == "mla") {
    const int64_t q_out = g.n_q_heads * (g.qk_nope_dim + g.rope_dim);
    if (g.q_lora_rank > 0) {
      p.linear += E * g.q_lora_rank + g.q_lora_rank * q_out;
      p.other += g.q_lora_rank;  // RMSNorm on the query latent
    } else {
      p.linear += E * q_out;
    }
    p.linear += E * (g.kv_lora_rank + g.rope_dim);  // joint kv down-proj
    p.linear += g.kv_lora_rank * g.n_q_heads * (g.qk_nope_dim + g.v_head_dim);  // kv up-proj
    p.linear += g.n_q_heads * g.v_head_dim * E;                                 // output
    p.other += g.kv_lora_rank;                                                  // latent RMSNorm
    return p;
  }
  const int64_t Wq = g.q_latent_width();
  const int64_t Wk = g.kv_latent_width();
  p.linear = 2 * E * Wq + 2 * E * Wk;  // q, o, k, v (v split in halves when value-shifted)
  if (g.is_cca()) {
    p.conv = conv_weight_params(g);
    p.other = g.n_kv_heads;  // key temperature
  } else if (g.qk_norm) {
    p.other = 2 * g.head_dim;
  }
  return p;
}

double attention_forward_flops_per_token(const AttentionGeometry& g, int64_t context, bool causal) {
  const double keys = causal ? 0.5 * static_cast<double>(context) : static_cast<double>(context);
  const double linear = 2.0 * static_cast<double>(attention_params(g).linear);
  const double conv = 2.0 * conv_macs_per_token(g);
  const double qk_dim = static_cast<double>(g.head_dim);
  const double v_dim = static_cast<double>(g.v_head_dim);
  const double scores = 2.0 * keys * static_cast<double>(g.n_q_heads) * (qk_dim + v_dim);
  return linear + conv + scores;
}

double attention_decode_flops(const AttentionGeometry& g, int64_t context) {
  const double S = static_cast<double>(context);
  const double E = static_cast<double>(g.model_dim);
  const double h = static_cast<double>(g.n_q_heads);
  if (g.kind == "mla") {
    // Absorbed: per head, q_nope·W_UK (nope→r_kv), scores over [c_kv ‖ k_rope], values in the
    // latent, then W_UV·W_O. Down-projections as in training.
    const double r_kv = static_cast<double>(g.kv_lora_rank);
    const double rope = static_cast<double>(g.rope_dim);
    const double nope = static_cast<double>(g.qk_nope_dim);
    const double dv = static_cast<double>(g.v_head_dim);
    const double q_out = h * (nope + rope);
    double macs = g.q_lora_rank > 0 ? E * g.q_lora_rank + g.q_lora_rank * q_out : E * q_out;
    macs += E * (r_kv + rope);           // kv down-projection of the new token
    macs += h * nope * r_kv;             // absorb W_UK into q
    macs += h * S * (r_kv + rope);       // scores
    macs += h * S * r_kv;                // weighted latent values
    macs += h * r_kv * dv + h * dv * E;  // W_UV then W_O
    return 2.0 * macs;
  }
  double conv_macs = 0;  // the depthwise conv is re-evaluated at k1 positions in decode
  const double M = static_cast<double>(g.conv_channels());
  if (g.convs >= 1) conv_macs += M * g.conv_kernel_0 * (g.convs >= 2 ? g.conv_kernel_1 : 1);
  if (g.convs >= 2) conv_macs += M * g.head_dim * g.conv_kernel_1;
  const double linear = static_cast<double>(attention_params(g).linear);
  const double scores = S * h * (g.head_dim + g.v_head_dim);
  return 2.0 * (linear + conv_macs + scores);
}

int64_t kv_cache_elements_per_token(const AttentionGeometry& g) {
  if (g.kind == "mla") return g.kv_lora_rank + g.rope_dim;
  return g.n_kv_heads * (g.head_dim + g.v_head_dim);
}

int64_t decode_state_elements(const AttentionGeometry& g) {
  if (!g.is_cca()) return 0;
  const int64_t conv_state = g.conv_padding() * g.conv_channels();
  const int64_t shift_state = g.value_shift ? g.kv_latent_width() / 2 : 0;
  return conv_state + shift_state;
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
    if (!is_moe_layer(c, layer)) {
      m.total_params += dense_ffn;
      m.active_params += dense_ffn;
      m.active_matmul_params += dense_ffn;
      continue;
    }
    const int64_t router = E * c.moe.n_experts;
    const int64_t shared = c.moe.shared_experts * expert;
    m.total_params += router + c.moe.n_experts * expert + shared;
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
