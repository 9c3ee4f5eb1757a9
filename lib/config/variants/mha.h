// Multi-head attention: one key/value head per query head, optional per-head QK-norm.
#pragma once

#include "config/attention_variant.h"

namespace cca::variants {

class MhaVariant : public AttentionVariant {
 public:
  std::string name() const override { return "mha"; }
  bool uses_qk_norm() const override { return true; }
  void validate(const Config& c, RuleSink& rules) const override;
  AttentionGeometry geometry(const Config& c) const override;

  AttentionParams params(const AttentionGeometry& g) const override;
  double forward_flops_per_token(const AttentionGeometry& g, int64_t context,
                                 bool causal) const override;
  double decode_flops(const AttentionGeometry& g, int64_t context) const override;
  int64_t kv_elements_per_token(const AttentionGeometry& g) const override;

  std::string summary(const AttentionGeometry& g) const override;
  std::string label(const AttentionGeometry& g) const override;
};

}  // namespace cca::variants
