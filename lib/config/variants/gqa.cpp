#include "config/variants/gqa.h"

#include "config/variants/common.h"
#include "util/format.h"
#include "util/strings.h"

namespace cca::variants {

void GqaVariant::check_kv_heads(const Config& c, RuleSink& rules) {
  const AttentionConfig& a = c.attention;
  if (a.n_kv_heads == 0) {
    rules.fail({"attention.kind"},
               format("kind {} needs attention.n_kv_heads; valid values divide attention.n_heads "
                      "= {}: {}",
                      a.kind, a.n_heads, divisors_text(a.n_heads)));
  }
  if (a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads != 0) {
    rules.fail({"attention.n_kv_heads", "attention.n_heads"},
               format("attention.n_kv_heads = {} does not divide attention.n_heads = {}; valid "
                      "values: {}",
                      a.n_kv_heads, a.n_heads, divisors_text(a.n_heads)));
  }
}

void GqaVariant::validate(const Config& c, RuleSink& rules) const {
  check_head_split(c, rules);
  check_kv_heads(c, rules);
  check_rope_fraction(c, rules);
  check_head_convs(c, rules);
}

AttentionGeometry GqaVariant::geometry(const Config& c) const {
  AttentionGeometry g = per_head_geometry(c);
  g.n_q_heads = c.attention.n_heads;
  g.n_kv_heads = c.attention.n_kv_heads > 0 ? c.attention.n_kv_heads : c.attention.n_heads;
  return g;
}

const AttentionVariant& gqa_variant() {
  static const GqaVariant variant;
  return variant;
}

}  // namespace cca::variants
