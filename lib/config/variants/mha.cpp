#include "config/variants/mha.h"

#include "config/variants/common.h"
#include "util/format.h"

namespace cca::variants {

void MhaVariant::validate(const Config& c, RuleSink& rules) const {
  const AttentionConfig& a = c.attention;
  check_head_split(c, rules);
  if (a.n_kv_heads != 0 && a.n_kv_heads != a.n_heads) {
    rules.fail({"attention.n_kv_heads", "attention.kind"},
               format("attention.n_kv_heads = {} with kind mha, which has one KV head per query "
                      "head ({}); use kind: gqa, or n_kv_heads: 0",
                      a.n_kv_heads, a.n_heads));
  }
  check_rope_fraction(c, rules);
}

AttentionGeometry MhaVariant::geometry(const Config& c) const {
  AttentionGeometry g = per_head_geometry(c);
  g.n_q_heads = c.attention.n_heads;
  g.n_kv_heads = c.attention.n_heads;
  return g;
}

AttentionParams MhaVariant::params(const AttentionGeometry& g) const {
  AttentionParams p;
  p.linear = projection_params(g);
  if (g.qk_norm) p.other = 2 * g.head_dim;
  return p;
}

double MhaVariant::forward_flops_per_token(const AttentionGeometry& g, int64_t context,
                                           bool causal) const {
  return 2.0 * static_cast<double>(projection_params(g)) +
         score_flops(g, visited_keys(context, causal));
}

double MhaVariant::decode_flops(const AttentionGeometry& g, int64_t context) const {
  return static_cast<double>(2 * projection_params(g)) +
         score_flops(g, static_cast<double>(context));
}

int64_t MhaVariant::kv_elements_per_token(const AttentionGeometry& g) const {
  return per_head_kv_elements(g);
}

std::string MhaVariant::summary(const AttentionGeometry& g) const {
  return heads_summary(g);
}

std::string MhaVariant::label(const AttentionGeometry& g) const {
  return heads_label(g);
}

const AttentionVariant& mha_variant() {
  static const MhaVariant variant;
  return variant;
}

}  // namespace cca::variants
