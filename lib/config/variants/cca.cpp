#include "config/variants/cca.h"

#include "config/variants/common.h"
#include "util/format.h"
#include "util/strings.h"

namespace cca::variants {
namespace {

constexpr const char* kQCompression = "attention.cca.q_compression";
constexpr const char* kKvCompression = "attention.cca.kv_compression";
constexpr const char* kConvs = "attention.cca.convs";
constexpr const char* kKernel0 = "attention.cca.conv_kernel_0";
constexpr const char* kKernel1 = "attention.cca.conv_kernel_1";
constexpr const char* kQkMean = "attention.cca.qk_mean";
constexpr const char* kValueShift = "attention.cca.value_shift";
constexpr const char* kTemperature = "attention.cca.temperature";
constexpr const char* kKernels = "attention.cca.kernels";

ConvStack conv_stack(const CcaGeometry& g) {
  return {g.convs, g.conv_kernel_0, g.conv_kernel_1, g.conv_channels(), g.head_dim};
}

const char* on_off(bool on) {
  return on ? "on" : "off";
}

}  // namespace

int64_t CcaGeometry::conv_padding() const {
  return conv_stack(*this).padding();
}

CcaGeometry cca_geometry(const AttentionGeometry& g) {
  CcaGeometry c;
  static_cast<AttentionGeometry&>(c) = g;
  const VariantSettings& s = g.settings;
  c.q_compression = s.integer(kQCompression);
  c.kv_compression = s.integer(kKvCompression);
  c.convs = s.integer(kConvs);
  c.conv_kernel_0 = s.integer(kKernel0);
  c.conv_kernel_1 = s.integer(kKernel1);
  c.qk_mean = s.flag(kQkMean);
  c.value_shift = s.flag(kValueShift);
  c.temperature = s.text(kTemperature);
  c.fused_kernels = s.text(kKernels) == "auto";
  return c;
}

std::vector<KeySpec> CcaVariant::keys() const {
  return {
      setting_key(kQCompression, IntSpec{4, 1, 1024},
                  "CCA/CCGQA query compression C1: n_q = E / (C1 · head_dim)."),
      setting_key(kKvCompression, IntSpec{0, 0, 1024},
                  "CCGQA key/value compression C2 (a multiple of C1): n_kv = E / (C2 · head_dim); "
                  "0 = C1 (plain CCA)."),
      setting_key(kConvs, IntSpec{2, 0, 2},
                  "Causal convolutions on q‖k: 0 = none, 1 = depthwise only, 2 = depthwise then "
                  "grouped."),
      setting_key(kKernel0, IntSpec{2, 1, 4}, "Kernel size k0 of the depthwise convolution."),
      setting_key(kKernel1, IntSpec{2, 1, 4},
                  "Kernel size k1 of the grouped (one head per group) convolution."),
      setting_key(kQkMean, BoolSpec{true}, "Add the (group) mean of pre-conv q and k to both."),
      setting_key(kValueShift, BoolSpec{true},
                  "Half the value channels come from the previous token."),
      setting_key(kTemperature, EnumSpec{"exp", {"exp", "raw"}},
                  "Key temperature form: exp(β) with β = 0 at init (paper), or the raw multiplier "
                  "initialised to 1 (needed to load ZAYA1 weights)."),
      setting_key(kKernels, EnumSpec{"auto", {"auto", "reference"}},
                  "auto = fused CUDA kernels on GPU; reference = plain LibTorch ops (for "
                  "debugging)."),
  };
}

int64_t CcaVariant::kv_compression(const Config& c) {
  const VariantSettings& s = c.attention.settings;
  const int64_t c2 = s.integer(kKvCompression);
  return c2 > 0 ? c2 : s.integer(kQCompression);
}

void CcaVariant::validate(const Config& c, RuleSink& rules) const {
  check_head_split(c, rules);
  reject_qk_norm(c, rules);
  check_rope_fraction(c, rules);
  const int64_t E = c.model.d_model;
  const int64_t d = resolved_head_dim(c);
  if (d <= 0) return;  // reported by the head split
  const std::string& kind = c.attention.kind;
  if (d % 2 != 0) {
    rules.fail({"attention.head_dim", "attention.n_heads"},
               format("{} needs an even head_dim (value shift and RoPE split heads in halves); got "
                      "{}",
                      kind, d));
  }
  const int64_t c1 = c.attention.settings.integer(kQCompression);
  const int64_t c2 = kv_compression(c);
  if (!grouped() && c2 != c1) {
    rules.fail({kKvCompression, "attention.kind"},
               format("kind {} compresses q and kv alike, but attention.cca.kv_compression = {} "
                      "differs from q_compression = {}; use kind: ccgqa for different factors",
                      kind, c2, c1));
    return;
  }
  const std::string valid = E % d == 0 ? divisors_text(E / d) : std::string("none");
  if (E % (c1 * d) != 0) {
    rules.fail({kQCompression, "attention.head_dim", "model.d_model"},
               format("attention.cca.q_compression = {} does not split model.d_model = {} into "
                      "whole heads of head_dim {}; valid compression factors: {}",
                      c1, E, d, valid));
    return;
  }
  if (c2 < c1 || c2 % c1 != 0) {
    rules.fail({kKvCompression, kQCompression},
               format("attention.cca.kv_compression = {} must be a multiple of q_compression = {} "
                      "(each kv head serves a whole group of query heads)",
                      c2, c1));
    return;
  }
  if (E % (c2 * d) != 0) {
    rules.fail({kKvCompression, "attention.head_dim", "model.d_model"},
               format("attention.cca.kv_compression = {} does not split model.d_model = {} into "
                      "whole heads of head_dim {}; valid compression factors: {}",
                      c2, E, d, valid));
  }
}

AttentionGeometry CcaVariant::geometry(const Config& c) const {
  AttentionGeometry g = per_head_geometry(c);
  const int64_t c1 = c.attention.settings.integer(kQCompression);
  const int64_t c2 = kv_compression(c);
  g.settings.set(kKvCompression, c2);
  const int64_t width_q = c1 * g.head_dim;
  const int64_t width_k = c2 * g.head_dim;
  g.n_q_heads = width_q > 0 ? c.model.d_model / width_q : 0;
  g.n_kv_heads = width_k > 0 ? c.model.d_model / width_k : 0;
  return g;
}

AttentionParams CcaVariant::params(const AttentionGeometry& geometry) const {
  const CcaGeometry g = cca_geometry(geometry);
  AttentionParams p;
  p.linear = projection_params(g);  // q, o, k, v (v split in halves when value-shifted)
  p.conv = conv_stack(g).params();
  p.other = g.n_kv_heads;  // key temperature
  return p;
}

double CcaVariant::forward_flops_per_token(const AttentionGeometry& geometry, int64_t context,
                                           bool causal) const {
  const CcaGeometry g = cca_geometry(geometry);
  return 2.0 * static_cast<double>(projection_params(g)) + 2.0 * conv_stack(g).macs_per_token() +
         score_flops(g, visited_keys(context, causal));
}

double CcaVariant::decode_flops(const AttentionGeometry& geometry, int64_t context) const {
  const CcaGeometry g = cca_geometry(geometry);
  const double conv_macs = conv_stack(g).decode_macs_per_token();
  const double linear = static_cast<double>(projection_params(g));
  const double scores = static_cast<double>(context) * static_cast<double>(g.n_q_heads) *
                        static_cast<double>(g.head_dim + g.v_head_dim);
  return 2.0 * (linear + conv_macs + scores);
}

int64_t CcaVariant::kv_elements_per_token(const AttentionGeometry& g) const {
  return per_head_kv_elements(g);
}

int64_t CcaVariant::decode_state_elements(const AttentionGeometry& geometry) const {
  const CcaGeometry g = cca_geometry(geometry);
  const int64_t conv_state = g.conv_padding() * g.conv_channels();
  const int64_t shift_state = g.value_shift ? g.kv_latent_width() / 2 : 0;
  return conv_state + shift_state;
}

std::string CcaVariant::summary(const AttentionGeometry& geometry) const {
  const CcaGeometry g = cca_geometry(geometry);
  return heads_summary(g) +
         format(
             "; latent widths q {} / kv {} (compression {}x / {}x), convs {} (k {} {}), "
             "q-k mean {}, value shift {}",
             g.q_latent_width(), g.kv_latent_width(), g.q_compression, g.kv_compression, g.convs,
             g.conv_kernel_0, g.conv_kernel_1, on_off(g.qk_mean), on_off(g.value_shift));
}

std::string CcaVariant::label(const AttentionGeometry& geometry) const {
  const CcaGeometry g = cca_geometry(geometry);
  return heads_label(g) + format(", convs {}, q-k mean {}, value shift {}", g.convs,
                                 on_off(g.qk_mean), on_off(g.value_shift));
}

const AttentionVariant& cca_variant() {
  static const CcaVariant variant;
  return variant;
}

}  // namespace cca::variants
