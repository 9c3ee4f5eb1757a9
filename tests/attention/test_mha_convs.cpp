// MHA/GQA with CCA's causal convs on q‖k and its value shift (attention.mha.*,
// lib/attention/mha.cpp): off, the layer is plain MHA bit for bit; on, it equals a direct
// composition of the steps (convs on the raw projections, then RoPE, attention, output), is causal,
// decodes token by token as it prefills, has the gradients finite differences give, and holds as
// many parameters and as much decode state as the accounting says. Document masking:
// test_documents.cpp. Float64 on CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "config/accounting.h"
#include "config/config.h"
#include "config/derived.h"
#include "ops/rope.h"
#include "testing/checks.h"

namespace cca {
namespace {

constexpr double kTheta = 500.0;

struct Case {
  std::string kind;  // mha | gqa
  int64_t convs;
  bool value_shift;
  bool qk_norm = false;
};

// E = 32, 4 query heads of 8 (gqa: 2 kv heads), half of each head rotated, kernels 3 and 2.
Config case_config(const Case& k) {
  Config c = default_config();
  c.model.d_model = 32;
  c.attention.kind = k.kind;
  c.attention.n_heads = 4;
  if (k.kind == "gqa") c.attention.n_kv_heads = 2;
  c.attention.qk_norm = k.qk_norm;
  c.attention.rope_fraction = 0.5;
  c.attention.rope_theta = kTheta;
  c.attention.settings.set("attention.mha.convs", k.convs);
  c.attention.settings.set("attention.mha.conv_kernel_0", 3);
  c.attention.settings.set("attention.mha.conv_kernel_1", 2);
  c.attention.settings.set("attention.mha.value_shift", k.value_shift);
  return c;
}

AttentionOptions test_options() {
  AttentionOptions options;
  options.init_std = 0.3;
  options.output_init_std = 0.3;
  options.rope_theta = kTheta;
  return options;
}

// `randomise`: every weight moved off its init, so the convs are no longer the identity.
std::shared_ptr<Attention> make_layer(const AttentionGeometry& g, bool randomise) {
  at::manual_seed(3);
  auto layer = make_attention(g, test_options());
  layer->to(at::kDouble);
  if (randomise) {
    at::NoGradGuard no_grad;
    for (at::Tensor& p : layer->parameters()) p.add_(at::randn_like(p).mul(0.2));
  }
  return layer;
}

std::shared_ptr<Attention> case_layer(const Case& k, bool randomise = true) {
  return make_layer(attention_geometry(case_config(k)), randomise);
}

std::vector<Case> convolved_cases() {
  return {{"mha", 1, false}, {"mha", 2, false}, {"mha", 2, true},
          {"gqa", 2, true},  {"gqa", 0, true},  {"gqa", 2, true, /*qk_norm=*/true}};
}

std::string name_of(const Case& k) {
  return k.kind + " convs " + std::to_string(k.convs) + (k.value_shift ? " + value shift" : "") +
         (k.qk_norm ? " + qk-norm" : "");
}

at::Tensor param(Attention& layer, const std::string& name) {
  return layer.named_parameters()[name];
}

// The layer written out: q⁰ = x W_q, k⁰ = x W_k; z = [q⁰ ‖ k⁰] left-padded once by P zeros
// through the depthwise conv (groups M) and the grouped conv (one group per head); values
// [x W_v first half ‖ x_{t-1} W_v second half]; RoPE; causal softmax attention with head h
// reading kv head h / group; W_o.
at::Tensor direct(Attention& layer, const Case& k, const at::Tensor& x) {
  const int64_t B = x.size(0), S = x.size(1), d = 8, n_q = 4, n_kv = k.kind == "gqa" ? 2 : 4;
  at::Tensor q = at::matmul(x, param(layer, "q_proj.weight").t());
  at::Tensor kk = at::matmul(x, param(layer, "k_proj.weight").t());
  at::Tensor v = at::matmul(x, param(layer, "v_proj.weight").t());
  if (k.convs > 0) {
    const std::vector<int64_t> one{1}, zero{0};
    const int64_t M = (n_q + n_kv) * d, P = 2 + (k.convs == 2 ? 1 : 0);
    at::Tensor z = at::constant_pad_nd(at::cat({q, kk}, -1).transpose(1, 2), {P, 0});
    z = at::conv1d(z, param(layer, "conv_qk.0.weight"), param(layer, "conv_qk.0.bias"), one, zero,
                   one, M);
    if (k.convs == 2) {
      z = at::conv1d(z, param(layer, "conv_qk.1.weight"), param(layer, "conv_qk.1.bias"), one, zero,
                     one, n_q + n_kv);
    }
    z = z.transpose(1, 2);
    q = z.narrow(2, 0, n_q * d);
    kk = z.narrow(2, n_q * d, n_kv * d);
  }
  if (k.value_shift) {
    const int64_t half = n_kv * d / 2;
    const at::Tensor late = at::constant_pad_nd(v.narrow(2, half, half), {0, 0, 1, 0});
    v = at::cat({v.narrow(2, 0, half), late.narrow(1, 0, S)}, -1);
  }
  const Rotary rotary(4, kTheta);
  q = rotary.apply(q.reshape({B, S, n_q, d}), 0).transpose(1, 2);
  kk =
      rotary.apply(kk.reshape({B, S, n_kv, d}), 0).transpose(1, 2).repeat_interleave(n_q / n_kv, 1);
  v = v.reshape({B, S, n_kv, d}).transpose(1, 2).repeat_interleave(n_q / n_kv, 1);
  at::Tensor scores = at::matmul(q, kk.transpose(2, 3)) / std::sqrt(8.0);
  scores = scores.masked_fill(at::ones({S, S}, at::kBool).triu(1), -INFINITY);
  const at::Tensor o = at::matmul(at::softmax(scores, -1), v).transpose(1, 2).reshape({B, S, -1});
  return at::matmul(o, param(layer, "o_proj.weight").t());
}

// Off, the module is plain MHA/GQA: the same parameters, the same random draws and the same
// outputs, bit for bit, as a geometry that has never heard of attention.mha.* (absent keys).
TEST(MhaConvs, OffIsPlainAttentionBitForBit) {
  for (const std::string kind : {"mha", "gqa"}) {
    const AttentionGeometry off = attention_geometry(case_config({kind, 0, false}));
    AttentionGeometry plain = off;
    plain.settings = VariantSettings();
    auto a = make_layer(off, false);
    auto b = make_layer(plain, false);
    const auto pa = a->named_parameters(), pb = b->named_parameters();
    ASSERT_EQ(pa.keys(), pb.keys()) << kind;
    for (const auto& p : pa) EXPECT_TRUE(at::equal(p.value(), pb[p.key()])) << p.key();
    at::manual_seed(5);
    const at::Tensor x = at::randn({2, 9, 32}, at::kDouble);
    EXPECT_TRUE(at::equal(a->forward(x), b->forward(x))) << kind;
    auto ca = a->new_cache(), cb = b->new_cache();
    EXPECT_TRUE(at::equal(a->forward(x, ca.get()), b->forward(x, cb.get()))) << kind;
    EXPECT_EQ(ca->bytes(), cb->bytes()) << kind;
  }
}

// CCA's conv init is the identity: at step 0 the convs change nothing (the value shift does).
TEST(MhaConvs, ConvsStartAsTheIdentity) {
  at::manual_seed(5);
  const at::Tensor x = at::randn({2, 9, 32}, at::kDouble);
  for (const std::string kind : {"mha", "gqa"}) {
    const at::Tensor plain = case_layer({kind, 0, false}, false)->forward(x);
    for (int64_t convs : {1, 2}) {
      EXPECT_LT(testing::max_abs_diff(case_layer({kind, convs, false}, false)->forward(x), plain),
                1e-12)
          << kind << " convs " << convs;
    }
    EXPECT_GT(testing::max_abs_diff(case_layer({kind, 2, true}, false)->forward(x), plain), 1e-3);
  }
}

TEST(MhaConvs, EqualsTheStepsWrittenOut) {
  at::manual_seed(6);
  const at::Tensor x = at::randn({2, 7, 32}, at::kDouble);
  for (const Case& k : convolved_cases()) {
    if (k.qk_norm) continue;  // the direct form has no QK-norm
    auto layer = case_layer(k);
    EXPECT_LT(testing::max_abs_diff(layer->forward(x), direct(*layer, k, x)), 1e-12) << name_of(k);
  }
}

TEST(MhaConvs, OutputsDoNotDependOnLaterTokens) {
  for (const Case& k : convolved_cases()) {
    SCOPED_TRACE(name_of(k));
    auto layer = case_layer(k);
    testing::expect_causal([&](const at::Tensor& x) { return layer->forward(x); }, 2, 10, 32);
  }
}

// The cache carries the last P pre-conv q‖k rows and the previous delayed value half.
TEST(MhaConvs, DecodeAndChunkedPrefillEqualTheFullForward) {
  for (const Case& k : convolved_cases()) {
    SCOPED_TRACE(name_of(k));
    auto layer = case_layer(k);
    testing::expect_prefill_chunked_decode_agree(*layer, 2, 11, 32, {1, 4, 2});
  }
}

TEST(MhaConvs, GradientsMatchFiniteDifferences) {
  at::manual_seed(8);
  const at::Tensor x = at::randn({1, 6, 32}, at::kDouble);
  for (const Case& k : {Case{"gqa", 2, true, true}, Case{"mha", 1, true}}) {
    SCOPED_TRACE(name_of(k));
    auto layer = case_layer(k);
    testing::expect_gradients_match(
        *layer, [&](const at::Tensor& in) { return layer->forward(in); }, x,
        /*per_tensor=*/3);
  }
}

// The descriptor's count is the module's: every conv weight and bias, nothing for the shift;
// its decode state is what the cache holds beside the keys and values.
TEST(MhaConvs, AccountingMatchesTheModule) {
  for (Case k : convolved_cases()) {
    SCOPED_TRACE(name_of(k));
    const AttentionGeometry g = attention_geometry(case_config(k));
    auto layer = make_layer(g, false);
    int64_t count = 0;
    for (const at::Tensor& p : layer->parameters()) count += p.numel();
    EXPECT_EQ(attention_params(g).total(), count);
    auto plain = make_layer(attention_geometry(case_config({k.kind, 0, false, k.qk_norm})), false);
    int64_t plain_count = 0;
    for (const at::Tensor& p : plain->parameters()) plain_count += p.numel();
    EXPECT_EQ(attention_params(g).conv, count - plain_count);

    const int64_t B = 3;
    auto cache = layer->new_cache();
    auto plain_cache = plain->new_cache();
    const at::Tensor x = at::randn({B, 5, 32}, at::kDouble);
    layer->forward(x, cache.get());
    plain->forward(x, plain_cache.get());
    EXPECT_EQ(cache->bytes() - plain_cache->bytes(),
              B * decode_state_elements(g) * static_cast<int64_t>(sizeof(double)));
  }
}

}  // namespace
}  // namespace cca
