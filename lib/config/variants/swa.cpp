// Sliding-window attention (Mistral, Gemma 2/3 local layers): grouped-query attention in which each
// query sees only itself and the window - 1 tokens before it, so training costs O(S·window) and the
// decode cache holds at most window - 1 tokens, whatever the sequence length.
#include <algorithm>

#include "config/variants/common.h"
#include "config/variants/gqa.h"
#include "util/format.h"

namespace cca::variants {
namespace {

constexpr const char* kWindow = "attention.swa.window";

class SwaVariant : public GqaVariant {
 public:
  std::string name() const override { return "swa"; }
  // The decode cache keeps only the window; no conv or shift state is carried for it.
  bool uses_head_convs() const override { return false; }

  std::vector<KeySpec> keys() const override {
    return {setting_key(kWindow, IntSpec{4096, 1, 1 << 22},
                        "Sliding-window attention (swa): each query sees itself and the window - 1 "
                        "tokens before it; the decode cache keeps the last window - 1 tokens.")};
  }

  // Like gqa, except that n_kv_heads may stay 0 (= n_heads: a windowed MHA).
  void validate(const Config& c, RuleSink& rules) const override {
    check_head_split(c, rules);
    if (c.attention.n_kv_heads > 0) check_kv_heads(c, rules);
    check_rope_fraction(c, rules);
  }

  double forward_flops_per_token(const AttentionGeometry& g, int64_t context,
                                 bool causal) const override {
    return 2.0 * static_cast<double>(projection_params(g)) +
           score_flops(g, windowed_keys(g, context, causal));
  }

  double decode_flops(const AttentionGeometry& g, int64_t context) const override {
    const double keys = static_cast<double>(std::min(context, window(g)));
    return static_cast<double>(2 * projection_params(g)) + score_flops(g, keys);
  }

  int64_t cached_tokens(const AttentionGeometry& g, int64_t context) const override {
    return std::min(context, window(g) - 1);
  }

  std::string summary(const AttentionGeometry& g) const override {
    return heads_summary(g) + format("; window {} tokens", window(g));
  }

  std::string label(const AttentionGeometry& g) const override {
    return heads_label(g) + format(", window {}", window(g));
  }

 private:
  static int64_t window(const AttentionGeometry& g) { return g.settings.integer(kWindow); }

  // Keys a query visits on average over `context` positions: all of them up to the window, then
  // the window (the causal count halves the triangle part, as for full attention).
  static double windowed_keys(const AttentionGeometry& g, int64_t context, bool causal) {
    const double S = static_cast<double>(context);
    const double W = static_cast<double>(window(g));
    if (!causal) return std::min(S, W);
    return S <= W ? 0.5 * S : W - 0.5 * W * W / S;
  }
};

}  // namespace

const AttentionVariant& swa_variant() {
  static const SwaVariant variant;
  return variant;
}

}  // namespace cca::variants
