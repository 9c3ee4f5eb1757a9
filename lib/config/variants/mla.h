// Multi-head latent attention (DeepSeek-V2/V3): keys and values come from one shared latent of
// kv_lora_rank dims plus a shared RoPE key; queries optionally from a low-rank latent.
#pragma once

#include "config/attention_variant.h"

namespace cca::variants {

// The geometry with MLA's own widths read out of the settings.
struct MlaGeometry : AttentionGeometry {
  int64_t q_lora_rank = 0;  // 0 = full-rank query projection
  int64_t kv_lora_rank = 0;
  int64_t qk_nope_dim = 0;  // head_dim = qk_nope_dim + rope_dim
};
MlaGeometry mla_geometry(const AttentionGeometry& g);

class MlaVariant : public AttentionVariant {
 public:
  std::string name() const override { return "mla"; }
  std::vector<KeySpec> keys() const override;
  void validate(const Config& c, RuleSink& rules) const override;
  AttentionGeometry geometry(const Config& c) const override;

  AttentionParams params(const AttentionGeometry& g) const override;
  double forward_flops_per_token(const AttentionGeometry& g, int64_t context,
                                 bool causal) const override;
  double decode_flops(const AttentionGeometry& g, int64_t context) const override;
  int64_t kv_elements_per_token(const AttentionGeometry& g) const override;
  int64_t core_kv_heads(const AttentionGeometry& g) const override { return g.n_q_heads; }
  RopeShape standalone_rope(const AttentionGeometry& g) const override { return {g.rope_dim, 1}; }

  std::string summary(const AttentionGeometry& g) const override;
  std::string label(const AttentionGeometry& g) const override;
};

}  // namespace cca::variants
