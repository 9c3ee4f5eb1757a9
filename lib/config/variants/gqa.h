// Grouped-query attention: n_kv_heads key/value heads, each serving n_heads / n_kv_heads query
// heads (1 = multi-query attention).
#pragma once

#include "config/variants/mha.h"

namespace cca::variants {

class GqaVariant : public MhaVariant {
 public:
  std::string name() const override { return "gqa"; }
  void validate(const Config& c, RuleSink& rules) const override;
  AttentionGeometry geometry(const Config& c) const override;

 protected:
  // The kv-head rules, shared with variants built on GQA.
  static void check_kv_heads(const Config& c, RuleSink& rules);
};

}  // namespace cca::variants
