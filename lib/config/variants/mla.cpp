#include "config/variants/mla.h"

#include "config/variants/common.h"
#include "util/format.h"

namespace cca::variants {
namespace {

constexpr const char* kQLoraRank = "attention.mla.q_lora_rank";
constexpr const char* kKvLoraRank = "attention.mla.kv_lora_rank";
constexpr const char* kNopeDim = "attention.mla.qk_nope_head_dim";
constexpr const char* kRopeDim = "attention.mla.qk_rope_head_dim";
constexpr const char* kValueDim = "attention.mla.v_head_dim";

}  // namespace

MlaGeometry mla_geometry(const AttentionGeometry& g) {
  MlaGeometry m;
  static_cast<AttentionGeometry&>(m) = g;
  m.q_lora_rank = g.settings.optional_integer(kQLoraRank).value_or(0);
  m.kv_lora_rank = g.settings.integer(kKvLoraRank);
  m.qk_nope_dim = g.settings.integer(kNopeDim);
  return m;
}

std::vector<KeySpec> MlaVariant::keys() const {
  return {
      setting_key(kQLoraRank, OptionalIntSpec{1, 1 << 20},
                  "MLA query low-rank width r_q; null = full-rank query projection."),
      setting_key(kKvLoraRank, IntSpec{512, 1, 1 << 20}, "MLA key/value latent width r_kv."),
      setting_key(kNopeDim, IntSpec{128, 1, 1024}, "MLA per-head query/key dims without RoPE."),
      setting_key(kRopeDim, IntSpec{64, 0, 1024},
                  "MLA decoupled RoPE dims (one RoPE key shared by all heads)."),
      setting_key(kValueDim, IntSpec{128, 1, 1024}, "MLA per-head value dims."),
  };
}

void MlaVariant::validate(const Config& c, RuleSink& rules) const {
  reject_qk_norm(c, rules);
  const VariantSettings& s = c.attention.settings;
  const int64_t nope = s.integer(kNopeDim), rope = s.integer(kRopeDim);
  const int64_t value = s.integer(kValueDim);
  if (c.attention.core == "flash" && value != nope + rope) {
    rules.fail({"attention.core", kValueDim},
               format("attention.core flash needs equal q/k and v head dims, but mla has {} + {} "
                      "= {} vs v_head_dim {}; use core auto or cudnn",
                      nope, rope, nope + rope, value));
  }
  if (rope % 2 != 0) {
    rules.fail({kRopeDim},
               format("attention.mla.qk_rope_head_dim = {} must be even (rotate-half RoPE)", rope));
  }
}

AttentionGeometry MlaVariant::geometry(const Config& c) const {
  const VariantSettings& s = c.attention.settings;
  AttentionGeometry g;
  g.kind = c.attention.kind;
  g.model_dim = c.model.d_model;
  g.qk_norm = c.attention.qk_norm;
  g.settings = s;
  g.n_q_heads = c.attention.n_heads;
  g.n_kv_heads = 1;
  g.rope_dim = s.integer(kRopeDim);
  g.head_dim = s.integer(kNopeDim) + g.rope_dim;
  g.v_head_dim = s.integer(kValueDim);
  return g;
}

AttentionParams MlaVariant::params(const AttentionGeometry& geometry) const {
  const MlaGeometry g = mla_geometry(geometry);
  const int64_t E = g.model_dim;
  const int64_t q_out = g.n_q_heads * (g.qk_nope_dim + g.rope_dim);
  AttentionParams p;
  if (g.q_lora_rank > 0) {
    p.linear += E * g.q_lora_rank + g.q_lora_rank * q_out;
    p.other += g.q_lora_rank;  // RMSNorm on the query latent
  } else {
    p.linear += E * q_out;
  }
  p.linear += E * (g.kv_lora_rank + g.rope_dim);                              // joint kv down-proj
  p.linear += g.kv_lora_rank * g.n_q_heads * (g.qk_nope_dim + g.v_head_dim);  // kv up-proj
  p.linear += g.n_q_heads * g.v_head_dim * E;                                 // output
  p.other += g.kv_lora_rank;                                                  // latent RMSNorm
  return p;
}

double MlaVariant::forward_flops_per_token(const AttentionGeometry& g, int64_t context,
                                           bool causal) const {
  return 2.0 * static_cast<double>(params(g).linear) +
         score_flops(g, visited_keys(context, causal));
}

// Absorbed: per head, q_nope·W_UK (nope→r_kv), scores over [c_kv ‖ k_rope], values in the latent,
// then W_UV·W_O. Down-projections as in training.
double MlaVariant::decode_flops(const AttentionGeometry& geometry, int64_t context) const {
  const MlaGeometry g = mla_geometry(geometry);
  const double S = static_cast<double>(context);
  const double E = static_cast<double>(g.model_dim);
  const double h = static_cast<double>(g.n_q_heads);
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

int64_t MlaVariant::kv_elements_per_token(const AttentionGeometry& g) const {
  return mla_geometry(g).kv_lora_rank + g.rope_dim;
}

std::string MlaVariant::summary(const AttentionGeometry& geometry) const {
  const MlaGeometry g = mla_geometry(geometry);
  return format(
      "mla: {} heads, q_lora_rank {}, kv_lora_rank {}, qk dims {}+{} (nope+rope), v dim {}",
      g.n_q_heads, g.q_lora_rank > 0 ? std::to_string(g.q_lora_rank) : "none", g.kv_lora_rank,
      g.qk_nope_dim, g.rope_dim, g.v_head_dim);
}

std::string MlaVariant::label(const AttentionGeometry& geometry) const {
  const MlaGeometry g = mla_geometry(geometry);
  return format("mla {}h, kv latent {} + rope {}{}", g.n_q_heads, g.kv_lora_rank, g.rope_dim,
                g.q_lora_rank > 0 ? format(", q latent {}", g.q_lora_rank) : std::string());
}

const AttentionVariant& mla_variant() {
  static const MlaVariant variant;
  return variant;
}

}  // namespace cca::variants
