// Compressed Convolutional Attention (arXiv 2510.04476, ../shared/docs/cca-spec.md): queries, keys
// and values projected into a compressed latent (E / C1 query heads), causal convolutions on q‖k,
// q-k mean, value shift, L2 norm with a key temperature, partial RoPE, attention in the latent.
#pragma once

#include <string>

#include "config/attention_variant.h"

namespace cca::variants {

// The geometry with CCA's own settings read out (shared by cca and ccgqa).
struct CcaGeometry : AttentionGeometry {
  int64_t q_compression = 1;   // C1
  int64_t kv_compression = 1;  // C2 (resolved: C1 for plain CCA)
  int64_t convs = 0;
  int64_t conv_kernel_0 = 0;
  int64_t conv_kernel_1 = 0;
  bool qk_mean = false;
  bool value_shift = false;
  std::string temperature = "exp";  // "exp" | "raw"
  bool fused_kernels = true;        // attention.cca.kernels = auto

  int64_t q_latent_width() const { return n_q_heads * head_dim; }                 // W_q
  int64_t kv_latent_width() const { return n_kv_heads * head_dim; }               // W_k
  int64_t conv_channels() const { return q_latent_width() + kv_latent_width(); }  // M
  // Causal left pad of the conv stack, also the decode conv-state length P.
  int64_t conv_padding() const;
};
CcaGeometry cca_geometry(const AttentionGeometry& g);

class CcaVariant : public AttentionVariant {
 public:
  std::string name() const override { return "cca"; }
  std::vector<KeySpec> keys() const override;
  void validate(const Config& c, RuleSink& rules) const override;
  AttentionGeometry geometry(const Config& c) const override;

  AttentionParams params(const AttentionGeometry& g) const override;
  double forward_flops_per_token(const AttentionGeometry& g, int64_t context,
                                 bool causal) const override;
  double decode_flops(const AttentionGeometry& g, int64_t context) const override;
  int64_t kv_elements_per_token(const AttentionGeometry& g) const override;
  int64_t decode_state_elements(const AttentionGeometry& g) const override;
  // RoPE runs inside the fused prologue.
  RopeShape standalone_rope(const AttentionGeometry&) const override { return {}; }

  std::string summary(const AttentionGeometry& g) const override;
  std::string label(const AttentionGeometry& g) const override;

 protected:
  // attention.cca.kv_compression with 0 resolved to q_compression.
  static int64_t kv_compression(const Config& c);
  // Whether kind allows kv_compression ≠ q_compression (ccgqa does).
  virtual bool grouped() const { return false; }
};

}  // namespace cca::variants
