#include "config/variants/mha.h"

#include "util/format.h"

namespace cca::variants {
namespace {

constexpr const char* kConvs = "attention.mha.convs";
constexpr const char* kKernel0 = "attention.mha.conv_kernel_0";
constexpr const char* kKernel1 = "attention.mha.conv_kernel_1";
constexpr const char* kValueShift = "attention.mha.value_shift";

// ", convs 2 (k 2 2), value shift on": empty for the plain variant, so its texts are unchanged.
std::string head_conv_text(const HeadConvSettings& s) {
  if (!s.any()) return "";
  std::string text = s.convs > 0 ? format(", convs {} (k {}", s.convs, s.conv_kernel_0) : "";
  if (s.convs == 2) text += format(" {}", s.conv_kernel_1);
  if (s.convs > 0) text += ")";
  return text + (s.value_shift ? ", value shift on" : "");
}

}  // namespace

HeadConvSettings head_conv_settings(const AttentionGeometry& g) {
  const VariantSettings& s = g.settings;
  HeadConvSettings h;
  if (s.contains(kConvs)) h.convs = s.integer(kConvs);
  if (s.contains(kKernel0)) h.conv_kernel_0 = s.integer(kKernel0);
  if (s.contains(kKernel1)) h.conv_kernel_1 = s.integer(kKernel1);
  if (s.contains(kValueShift)) h.value_shift = s.flag(kValueShift);
  return h;
}

ConvStack head_conv_stack(const AttentionGeometry& g) {
  const HeadConvSettings s = head_conv_settings(g);
  return {s.convs, s.conv_kernel_0, s.conv_kernel_1, (g.n_q_heads + g.n_kv_heads) * g.head_dim,
          g.head_dim};
}

std::vector<KeySpec> MhaVariant::keys() const {
  return {
      setting_key(kConvs, IntSpec{0, 0, 2},
                  "mha/gqa only (a control for CCA's ablation): CCA's causal convolutions on each "
                  "head's raw q‖k, before QK-norm and RoPE: 0 = none (plain attention), 1 = "
                  "depthwise only, 2 = depthwise then grouped (one group per head)."),
      setting_key(kKernel0, IntSpec{2, 1, 4},
                  "mha/gqa: kernel size k0 of the depthwise convolution (attention.mha.convs >= "
                  "1)."),
      setting_key(kKernel1, IntSpec{2, 1, 4},
                  "mha/gqa: kernel size k1 of the grouped convolution (attention.mha.convs = 2)."),
      setting_key(kValueShift, BoolSpec{false},
                  "mha/gqa: CCA's value shift: the second half of the value channels (flattened "
                  "over the kv heads, as CCA splits them) comes from the previous token."),
  };
}

void MhaVariant::check_head_convs(const Config& c, RuleSink& rules) {
  const AttentionConfig& a = c.attention;
  if (!a.settings.contains(kValueShift) || !a.settings.flag(kValueShift)) return;
  const int64_t d = resolved_head_dim(c);
  const int64_t kv_heads = a.n_kv_heads > 0 ? a.n_kv_heads : a.n_heads;
  if (d > 0 && (kv_heads * d) % 2 != 0) {
    rules.fail({kValueShift, "attention.head_dim", "attention.n_kv_heads"},
               format("attention.mha.value_shift splits the {} value channels ({} kv heads × "
                      "head_dim {}) in halves; it needs an even number (an even head_dim or an "
                      "even n_kv_heads)",
                      kv_heads * d, kv_heads, d));
  }
}

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
  check_head_convs(c, rules);
}

AttentionGeometry MhaVariant::geometry(const Config& c) const {
  AttentionGeometry g = per_head_geometry(c);
  g.n_q_heads = c.attention.n_heads;
  g.n_kv_heads = c.attention.n_heads;
  return g;
}

AttentionParams MhaVariant::params(const AttentionGeometry& g) const {
  AttentionParams p;
  p.linear = projection_params(g);  // v keeps one projection with the value shift
  p.conv = head_conv_stack(g).params();
  if (g.qk_norm) p.other = 2 * g.head_dim;
  return p;
}

double MhaVariant::forward_flops_per_token(const AttentionGeometry& g, int64_t context,
                                           bool causal) const {
  return 2.0 * static_cast<double>(projection_params(g)) +
         2.0 * head_conv_stack(g).macs_per_token() + score_flops(g, visited_keys(context, causal));
}

double MhaVariant::decode_flops(const AttentionGeometry& g, int64_t context) const {
  return static_cast<double>(2 * projection_params(g)) +
         2.0 * head_conv_stack(g).decode_macs_per_token() +
         score_flops(g, static_cast<double>(context));
}

int64_t MhaVariant::kv_elements_per_token(const AttentionGeometry& g) const {
  return per_head_kv_elements(g);
}

// The last P pre-conv q‖k rows and the previous token's delayed value half, as CCA keeps them.
int64_t MhaVariant::decode_state_elements(const AttentionGeometry& g) const {
  const ConvStack stack = head_conv_stack(g);
  const int64_t shift = head_conv_settings(g).value_shift ? g.n_kv_heads * g.head_dim / 2 : 0;
  return stack.padding() * stack.channels + shift;
}

std::string MhaVariant::summary(const AttentionGeometry& g) const {
  return heads_summary(g) + head_conv_text(head_conv_settings(g));
}

std::string MhaVariant::label(const AttentionGeometry& g) const {
  return heads_label(g) + head_conv_text(head_conv_settings(g));
}

const AttentionVariant& mha_variant() {
  static const MhaVariant variant;
  return variant;
}

}  // namespace cca::variants
