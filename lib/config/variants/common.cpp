#include "config/variants/common.h"

#include <cmath>

#include "util/format.h"
#include "util/strings.h"

namespace cca::variants {
namespace {

// "mha and gqa": the variants of which `uses` says true.
std::string variants_that(bool (AttentionVariant::*uses)() const) {
  std::vector<std::string> names;
  for (const AttentionVariant* v : attention_variants()) {
    if ((v->*uses)()) names.push_back(v->name());
  }
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += i + 1 == names.size() ? " and " : ", ";
    text += names[i];
  }
  return text;
}

}  // namespace

int64_t resolved_head_dim(const Config& c) {
  const AttentionConfig& a = c.attention;
  if (a.head_dim > 0) return a.head_dim;
  return a.n_heads > 0 ? c.model.d_model / a.n_heads : 0;
}

AttentionGeometry per_head_geometry(const Config& c) {
  const AttentionConfig& a = c.attention;
  AttentionGeometry g;
  g.kind = a.kind;
  g.model_dim = c.model.d_model;
  g.qk_norm = a.qk_norm;
  g.settings = a.settings;
  g.head_dim = resolved_head_dim(c);
  g.v_head_dim = g.head_dim;
  g.rope_dim =
      static_cast<int64_t>(std::llround(a.rope_fraction * static_cast<double>(g.head_dim)));
  return g;
}

void check_head_split(const Config& c, RuleSink& rules) {
  const AttentionConfig& a = c.attention;
  const int64_t E = c.model.d_model;
  if (a.head_dim == 0 && E % a.n_heads != 0) {
    rules.fail({"attention.n_heads", "model.d_model"},
               format("model.d_model = {} is not divisible by attention.n_heads = {}; choose "
                      "n_heads from {} or set attention.head_dim",
                      E, a.n_heads, divisors_text(E)));
  }
}

void reject_qk_norm(const Config& c, RuleSink& rules) {
  if (!c.attention.qk_norm) return;
  rules.fail({"attention.qk_norm"},
             format("attention.qk_norm applies to {}; {} normalises its own latents (set "
                    "qk_norm: false)",
                    variants_that(&AttentionVariant::uses_qk_norm), c.attention.kind));
}

void reject_head_convs(const Config& c, RuleSink& rules) {
  const VariantSettings& s = c.attention.settings;
  const std::string users = variants_that(&AttentionVariant::uses_head_convs);
  if (s.contains("attention.mha.convs") && s.integer("attention.mha.convs") != 0) {
    rules.fail({"attention.mha.convs", "attention.kind"},
               format("attention.mha.convs = {} applies to kind {} only, not {} (cca and ccgqa "
                      "have attention.cca.convs); set attention.mha.convs: 0",
                      s.integer("attention.mha.convs"), users, c.attention.kind));
  }
  if (s.contains("attention.mha.value_shift") && s.flag("attention.mha.value_shift")) {
    rules.fail({"attention.mha.value_shift", "attention.kind"},
               format("attention.mha.value_shift applies to kind {} only, not {} (cca and ccgqa "
                      "have attention.cca.value_shift); set attention.mha.value_shift: false",
                      users, c.attention.kind));
  }
}

void check_rope_fraction(const Config& c, RuleSink& rules) {
  const AttentionConfig& a = c.attention;
  if (a.head_dim == 0 && c.model.d_model % a.n_heads != 0) return;  // reported by the head split
  const int64_t head_dim = resolved_head_dim(c);
  const double rotary = a.rope_fraction * static_cast<double>(head_dim);
  const bool whole = std::fabs(rotary - std::round(rotary)) < 1e-9;
  if (head_dim > 0 && (!whole || static_cast<int64_t>(std::llround(rotary)) % 2 != 0)) {
    rules.fail({"attention.rope_fraction", "attention.head_dim"},
               format("attention.rope_fraction = {} gives {} rotary dims of head_dim {}; "
                      "rotate-half RoPE needs an even whole number (e.g. rope_fraction 0.5 or 1.0)",
                      a.rope_fraction, rotary, head_dim));
  }
}

int64_t projection_params(const AttentionGeometry& g) {
  const int64_t E = g.model_dim;
  return 2 * E * g.n_q_heads * g.head_dim + 2 * E * g.n_kv_heads * g.head_dim;
}

double visited_keys(int64_t context, bool causal) {
  return causal ? 0.5 * static_cast<double>(context) : static_cast<double>(context);
}

double score_flops(const AttentionGeometry& g, double keys) {
  return 2.0 * keys * static_cast<double>(g.n_q_heads) *
         static_cast<double>(g.head_dim + g.v_head_dim);
}

int64_t per_head_kv_elements(const AttentionGeometry& g) {
  return g.n_kv_heads * (g.head_dim + g.v_head_dim);
}

int64_t ConvStack::padding() const {
  if (convs == 0) return 0;
  return (kernel_0 - 1) + (convs == 2 ? kernel_1 - 1 : 0);
}

int64_t ConvStack::params() const {
  int64_t params = 0;
  if (convs >= 1) params += channels * (kernel_0 + 1);             // depthwise + bias
  if (convs >= 2) params += channels * (head_dim * kernel_1 + 1);  // grouped + bias
  return params;
}

double ConvStack::macs_per_token() const {
  const double M = static_cast<double>(channels);
  double macs = 0;
  if (convs >= 1) macs += M * kernel_0;
  if (convs >= 2) macs += M * head_dim * kernel_1;
  return macs;
}

double ConvStack::decode_macs_per_token() const {
  const double M = static_cast<double>(channels);
  double macs = 0;
  if (convs >= 1) macs += M * kernel_0 * (convs >= 2 ? kernel_1 : 1);
  if (convs >= 2) macs += M * head_dim * kernel_1;
  return macs;
}

std::string heads_summary(const AttentionGeometry& g) {
  return format("{}: {} query heads, {} kv heads (group {}), head_dim {}, rope dims {}", g.kind,
                g.n_q_heads, g.n_kv_heads, g.group_size(), g.head_dim, g.rope_dim);
}

std::string heads_label(const AttentionGeometry& g) {
  return format("{} {}q/{}kv ×{}", g.kind, g.n_q_heads, g.n_kv_heads, g.head_dim);
}

}  // namespace cca::variants
