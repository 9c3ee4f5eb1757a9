// One descriptor per attention variant: everything about a variant that needs no tensors — its
// own config keys, its validation rules, how its heads and widths follow from the config, its
// parameter / FLOP / KV-cache accounting, and how it is described to a person. The descriptors live
// one per file in lib/config/variants/ and are listed once, in lib/config/variants/list.h, which
// also names each variant's module factory (lib/attention/<name>.cpp). docs/architecture.md has
// the "adding a variant" guide.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/geometry.h"
#include "config/schema.h"

namespace cca {

// Parameters of one attention layer.
struct AttentionParams {
  int64_t linear = 0;  // projection weights
  int64_t conv = 0;    // CCA conv weights and biases
  int64_t other = 0;   // norms, key temperature
  int64_t total() const { return linear + conv + other; }
};

// Where a descriptor reports a broken rule: at the first of `keys` the user set explicitly, else at
// the first key's default (validate.cpp implements it).
class RuleSink {
 public:
  virtual ~RuleSink() = default;
  virtual void fail(std::initializer_list<const char*> keys, const std::string& message) = 0;
};

class AttentionVariant {
 public:
  virtual ~AttentionVariant() = default;

  // attention.kind's value.
  virtual std::string name() const = 0;
  // The keys only this variant (family) reads, in the order --help-config lists them after the
  // common attention.* keys. Two variants may declare the same key (cca and ccgqa): listed once.
  virtual std::vector<KeySpec> keys() const { return {}; }
  // Whether attention.qk_norm means something for this variant.
  virtual bool uses_qk_norm() const { return false; }
  // Whether attention.mha.convs / value_shift (CCA's convs and value shift on plain heads) mean
  // something for this variant; every other variant refuses them (validate.cpp).
  virtual bool uses_head_convs() const { return false; }

  // The attention section's cross-field rules when attention.kind names this variant.
  virtual void validate(const Config& config, RuleSink& rules) const = 0;
  // Heads and widths with the automatic values resolved; the variant's own settings copied along.
  virtual AttentionGeometry geometry(const Config& config) const = 0;

  // Accounting (2 FLOPs per multiply-accumulate; norms, softmax, RoPE and biases ignored).
  virtual AttentionParams params(const AttentionGeometry& g) const = 0;
  // Forward FLOPs per token of one layer at context `context`: projections, convs and the
  // score/value products; `causal` counts only the keys a causal kernel visits.
  virtual double forward_flops_per_token(const AttentionGeometry& g, int64_t context,
                                         bool causal) const = 0;
  // FLOPs to decode one token with `context` tokens before it.
  virtual double decode_flops(const AttentionGeometry& g, int64_t context) const = 0;
  // Elements cached per token per layer.
  virtual int64_t kv_elements_per_token(const AttentionGeometry& g) const = 0;
  // Tokens a layer's decode cache holds after `context` tokens: all of them unless the variant
  // bounds its cache.
  virtual int64_t cached_tokens(const AttentionGeometry&, int64_t context) const { return context; }
  // Constant per-sequence decode state per layer, in elements.
  virtual int64_t decode_state_elements(const AttentionGeometry&) const { return 0; }

  // Shapes benchmarks time the pieces of a training step with. Key/value heads the core attention
  // reads in training (MLA expands its latent to every head):
  virtual int64_t core_kv_heads(const AttentionGeometry& g) const { return g.n_kv_heads; }
  // The tensors RoPE rotates outside fused kernels, [B, S, heads, width] for queries and
  // [B, S, key_heads, width] for keys; width 0 when RoPE runs inside the variant's kernels.
  struct RopeShape {
    int64_t width = 0;
    int64_t key_heads = 0;
  };
  virtual RopeShape standalone_rope(const AttentionGeometry& g) const {
    return {g.head_dim, g.n_kv_heads};
  }

  // The --dry-run line ("cca: 3 query heads, ...").
  virtual std::string summary(const AttentionGeometry& g) const = 0;
  // The report's short "Attention" cell ("cca 3q/3kv ×64, convs 2, ...").
  virtual std::string label(const AttentionGeometry& g) const = 0;
};

// The registered variants, in the order of lib/config/variants/list.h.
const std::vector<const AttentionVariant*>& attention_variants();
std::vector<std::string> attention_variant_names();
// The variant called `name`; throws cca::Error naming the known ones.
const AttentionVariant& attention_variant(const std::string& name);

// The geometry's variant describing it: the --dry-run line and the report's short label.
inline std::string attention_summary(const AttentionGeometry& g) {
  return g.variant().summary(g);
}
inline std::string attention_label(const AttentionGeometry& g) {
  return g.variant().label(g);
}

}  // namespace cca
