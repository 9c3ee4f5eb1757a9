// Multi-head attention: one key/value head per query head, optional per-head QK-norm, and, as a
// control for CCA's ablations, CCA's causal convolutions on q‖k and its value shift
// (attention.mha.*, shared with gqa).
#pragma once

#include "config/attention_variant.h"
#include "config/variants/common.h"

namespace cca::variants {

// attention.mha.* read out of a geometry's settings: CCA's conv stack over the heads' raw q and k
// (before QK-norm and RoPE) and its value shift. Absent keys (a geometry built by hand) read as
// off, the plain variant.
struct HeadConvSettings {
  int64_t convs = 0;
  int64_t conv_kernel_0 = 2;
  int64_t conv_kernel_1 = 2;
  bool value_shift = false;

  bool any() const { return convs > 0 || value_shift; }
};
HeadConvSettings head_conv_settings(const AttentionGeometry& g);
// The conv stack over the (n_q + n_kv) heads of q‖k.
ConvStack head_conv_stack(const AttentionGeometry& g);

class MhaVariant : public AttentionVariant {
 public:
  std::string name() const override { return "mha"; }
  std::vector<KeySpec> keys() const override;
  bool uses_qk_norm() const override { return true; }
  bool uses_head_convs() const override { return true; }
  void validate(const Config& c, RuleSink& rules) const override;
  AttentionGeometry geometry(const Config& c) const override;

  AttentionParams params(const AttentionGeometry& g) const override;
  double forward_flops_per_token(const AttentionGeometry& g, int64_t context,
                                 bool causal) const override;
  double decode_flops(const AttentionGeometry& g, int64_t context) const override;
  int64_t kv_elements_per_token(const AttentionGeometry& g) const override;
  int64_t decode_state_elements(const AttentionGeometry& g) const override;

  std::string summary(const AttentionGeometry& g) const override;
  std::string label(const AttentionGeometry& g) const override;

 protected:
  // The value-shift rule, shared with gqa.
  static void check_head_convs(const Config& c, RuleSink& rules);
};

}  // namespace cca::variants
