// MLA (spec §8): the training path against a naive per-head re-implementation, the absorbed decode
// path against the training path, the cache layout, gradients and the parameter count.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <optional>
#include <string>

#include "attention/attention.h"
#include "config/accounting.h"
#include "config/config.h"
#include "config/geometry.h"
#include "testing/checks.h"

namespace cca {
namespace {

constexpr int64_t kE = 32, kHeads = 4, kQRank = 16, kKvRank = 12, kNope = 8, kRope = 4, kV = 6;

Config mla_config(std::optional<int64_t> q_lora_rank) {
  Config c = default_config();
  c.model.d_model = kE;
  c.attention.kind = "mla";
  c.attention.n_heads = kHeads;
  c.attention.settings.slot<std::optional<int64_t>>("attention.mla.q_lora_rank") = q_lora_rank;
  c.attention.settings.set("attention.mla.kv_lora_rank", kKvRank);
  c.attention.settings.set("attention.mla.qk_nope_head_dim", kNope);
  c.attention.settings.set("attention.mla.qk_rope_head_dim", kRope);
  c.attention.settings.set("attention.mla.v_head_dim", kV);
  return c;
}

AttentionOptions test_options() {
  AttentionOptions options;
  options.init_std = 0.2;  // large enough that the softmax is far from uniform
  options.output_init_std = 0.2;
  return options;
}

std::shared_ptr<Attention> make_layer(const Config& c) {
  auto layer = make_attention(attention_geometry(c), test_options());
  layer->to(at::kDouble);
  return layer;
}

std::map<std::string, at::Tensor> parameters(const Attention& layer) {
  std::map<std::string, at::Tensor> out;
  for (const auto& p : layer.named_parameters()) out[p.key()] = p.value().detach();
  return out;
}

// ---- A naive re-implementation: one token, one head at a time, formulas written out. ----------

at::Tensor naive_rms_norm(const at::Tensor& v, const at::Tensor& weight, double eps) {
  return v / std::sqrt(v.pow(2).mean().item<double>() + eps) * weight;
}

// Rotate-half RoPE at position `pos`: dim i pairs with i + r/2 at angle pos · θ^(-2i/r).
at::Tensor naive_rope(const at::Tensor& v, int64_t pos, double theta) {
  const int64_t r = v.size(0), half = r / 2;
  at::Tensor out = v.clone();
  for (int64_t i = 0; i < half; ++i) {
    const double angle = static_cast<double>(pos) * std::pow(theta, -2.0 * i / r);
    const double a = v[i].item<double>(), b = v[i + half].item<double>();
    out[i] = a * std::cos(angle) - b * std::sin(angle);
    out[i + half] = b * std::cos(angle) + a * std::sin(angle);
  }
  return out;
}

struct NaiveToken {
  std::vector<at::Tensor> q, k, v;  // per head: q, k [nope + rope], v [v_dim]
};

NaiveToken naive_token(std::map<std::string, at::Tensor>& p, const at::Tensor& x, int64_t pos,
                       const AttentionOptions& o) {
  at::Tensor q_all;
  if (p.count("q_proj.weight")) {
    q_all = at::mv(p["q_proj.weight"], x);
  } else {
    const at::Tensor c_q = at::mv(p["q_a_proj.weight"], x);
    q_all = at::mv(p["q_b_proj.weight"], naive_rms_norm(c_q, p["q_a_norm.weight"], o.norm_eps));
  }
  const at::Tensor joint = at::mv(p["kv_a_proj.weight"], x);
  const at::Tensor c_kv =
      naive_rms_norm(joint.narrow(0, 0, kKvRank), p["kv_a_norm.weight"], o.norm_eps);
  const at::Tensor k_rope = naive_rope(joint.narrow(0, kKvRank, kRope), pos, o.rope_theta);
  const at::Tensor kv_all = at::mv(p["kv_b_proj.weight"], c_kv);
  NaiveToken t;
  for (int64_t h = 0; h < kHeads; ++h) {
    const at::Tensor qh = q_all.narrow(0, h * (kNope + kRope), kNope + kRope);
    const at::Tensor q_rope = naive_rope(qh.narrow(0, kNope, kRope), pos, o.rope_theta);
    t.q.push_back(at::cat({qh.narrow(0, 0, kNope), q_rope}));
    const at::Tensor kvh = kv_all.narrow(0, h * (kNope + kV), kNope + kV);
    t.k.push_back(at::cat({kvh.narrow(0, 0, kNope), k_rope}));  // the one shared rope key
    t.v.push_back(kvh.narrow(0, kNope, kV));
  }
  return t;
}

// x: [S, E] -> [S, E], explicit causal softmax per head and query.
at::Tensor naive_mla(std::map<std::string, at::Tensor> p, const at::Tensor& x,
                     const AttentionOptions& o) {
  const int64_t S = x.size(0);
  std::vector<NaiveToken> tokens;
  for (int64_t s = 0; s < S; ++s) tokens.push_back(naive_token(p, x[s], s, o));
  const double scale = 1.0 / std::sqrt(static_cast<double>(kNope + kRope));
  at::Tensor out = at::zeros({S, kE}, x.options());
  for (int64_t i = 0; i < S; ++i) {
    std::vector<at::Tensor> heads;
    for (int64_t h = 0; h < kHeads; ++h) {
      std::vector<double> scores;
      double top = -INFINITY;
      for (int64_t j = 0; j <= i; ++j) {
        scores.push_back(at::dot(tokens[i].q[h], tokens[j].k[h]).item<double>() * scale);
        top = std::max(top, scores.back());
      }
      double total = 0;
      for (double& s : scores) total += (s = std::exp(s - top));
      at::Tensor head = at::zeros({kV}, x.options());
      for (int64_t j = 0; j <= i; ++j) head += tokens[j].v[h] * (scores[j] / total);
      heads.push_back(head);
    }
    out[i] = at::mv(p["o_proj.weight"], at::cat(heads));
  }
  return out;
}

// ---- Tests over both query forms
// -----------------------------------------------------------------

class Mla : public ::testing::TestWithParam<std::optional<int64_t>> {};

TEST_P(Mla, ParametersHaveExportNamesAndShapes) {
  auto layer = make_layer(mla_config(GetParam()));
  std::map<std::string, std::vector<int64_t>> expected = {
      {"kv_a_proj.weight", {kKvRank + kRope, kE}},
      {"kv_a_norm.weight", {kKvRank}},
      {"kv_b_proj.weight", {kHeads * (kNope + kV), kKvRank}},
      {"o_proj.weight", {kE, kHeads * kV}},
  };
  if (GetParam()) {
    expected["q_a_proj.weight"] = {kQRank, kE};
    expected["q_a_norm.weight"] = {kQRank};
    expected["q_b_proj.weight"] = {kHeads * (kNope + kRope), kQRank};
  } else {
    expected["q_proj.weight"] = {kHeads * (kNope + kRope), kE};
  }
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& p : layer->named_parameters()) got[p.key()] = p.value().sizes().vec();
  EXPECT_EQ(got, expected);
}

TEST_P(Mla, ParameterCountMatchesAccounting) {
  const Config c = mla_config(GetParam());
  auto layer = make_layer(c);
  int64_t count = 0;
  for (const auto& p : layer->parameters()) count += p.numel();
  EXPECT_EQ(count, attention_params(attention_geometry(c)).total());
}

TEST_P(Mla, Causal) {
  auto layer = make_layer(mla_config(GetParam()));
  testing::expect_causal([&](const at::Tensor& x) { return layer->forward(x, nullptr); }, 2, 9, kE);
}

TEST_P(Mla, PrefillChunkedDecodeAgree) {
  auto layer = make_layer(mla_config(GetParam()));
  testing::expect_prefill_chunked_decode_agree(*layer, 2, 11, kE, {3, 1, 4});
}

TEST_P(Mla, GradientsMatchFiniteDifferences) {
  auto layer = make_layer(mla_config(GetParam()));
  testing::expect_gradients_match(
      *layer, [&](const at::Tensor& x) { return layer->forward(x, nullptr); },
      at::randn({2, 5, kE}, at::kDouble));
}

// Training through the absorbed path (a cached prefill) must reach every parameter correctly too.
TEST_P(Mla, AbsorbedPathGradientsMatchFiniteDifferences) {
  auto layer = make_layer(mla_config(GetParam()));
  testing::expect_gradients_match(
      *layer,
      [&](const at::Tensor& x) {
        auto cache = layer->new_cache();
        const at::Tensor head = layer->forward(x.narrow(1, 0, 2), cache.get());
        return at::cat({head, layer->forward(x.narrow(1, 2, 3), cache.get())}, 1);
      },
      at::randn({2, 5, kE}, at::kDouble));
}

TEST_P(Mla, TrainingPathMatchesNaiveImplementation) {
  auto layer = make_layer(mla_config(GetParam()));
  at::manual_seed(5);
  // Non-trivial norm scales, so a skipped or misplaced RMSNorm weight shows.
  for (auto& p : layer->named_parameters()) {
    if (p.key().find("norm") != std::string::npos) {
      at::NoGradGuard no_grad;
      p.value().uniform_(0.5, 1.5);
    }
  }
  const at::Tensor x = at::randn({2, 7, kE}, at::kDouble);
  const at::Tensor got = layer->forward(x, nullptr).detach();
  for (int64_t b = 0; b < 2; ++b) {
    const at::Tensor want = naive_mla(parameters(*layer), x[b], test_options());
    EXPECT_LT(testing::max_abs_diff(got[b], want), 1e-12) << "batch " << b;
  }
}

TEST_P(Mla, CacheHoldsOnlyTheLatentAndTheSharedRopeKey) {
  const Config c = mla_config(GetParam());
  auto layer = make_layer(c);
  auto cache = layer->new_cache();
  EXPECT_EQ(cache->bytes(), 0);
  layer->forward(at::randn({3, 5, kE}, at::kDouble), cache.get());
  layer->forward(at::randn({3, 1, kE}, at::kDouble), cache.get());
  layer->forward(at::randn({3, 1, kE}, at::kDouble), cache.get());
  const int64_t B = 3, L = 7;
  EXPECT_EQ(cache->length, L);
  EXPECT_EQ(cache->bytes(), B * L * (kKvRank + kRope) * 8);
  EXPECT_EQ(kv_cache_elements_per_token(attention_geometry(c)), kKvRank + kRope);

  // MHA with the same heads caches decompressed keys and values for every head.
  const int64_t mha_bytes = B * L * kHeads * ((kNope + kRope) + kV) * 8;
  EXPECT_LT(cache->bytes(), mha_bytes);
  Config mha = default_config();
  mha.model.d_model = kE;
  mha.attention.kind = "mha";
  mha.attention.n_heads = kHeads;
  auto mha_layer = make_layer(mha);
  auto mha_cache = mha_layer->new_cache();
  mha_layer->forward(at::randn({B, L, kE}, at::kDouble), mha_cache.get());
  EXPECT_LT(cache->bytes(), mha_cache->bytes());
}

// Output of head h alone: o_proj restricted to head h's value columns.
at::Tensor head_output(Attention& layer, const at::Tensor& x, int64_t h) {
  at::Tensor w = layer.named_parameters()["o_proj.weight"];
  const at::Tensor saved = w.detach().clone();
  at::NoGradGuard no_grad;
  at::Tensor mask = at::zeros_like(w);
  mask.narrow(1, h * kV, kV).fill_(1);
  w.mul_(mask);
  const at::Tensor out = layer.forward(x, nullptr);
  w.copy_(saved);
  return out;
}

TEST_P(Mla, OneRopeKeySharedByAllHeads) {
  auto layer = make_layer(mla_config(GetParam()));
  at::manual_seed(9);
  const at::Tensor x = at::randn({2, 6, kE}, at::kDouble);
  at::Tensor w = layer->named_parameters()["kv_a_proj.weight"];
  const at::Tensor rope_rows = w.narrow(0, kKvRank, kRope);
  for (int64_t h = 0; h < kHeads; ++h) {
    const at::Tensor before = head_output(*layer, x, h);
    const at::Tensor saved = rope_rows.detach().clone();
    {
      at::NoGradGuard no_grad;
      rope_rows.add_(at::randn_like(rope_rows));
    }
    const at::Tensor after = head_output(*layer, x, h);
    {
      at::NoGradGuard no_grad;
      rope_rows.copy_(saved);
    }
    // The rope key only enters scores: position 0 has one key, so its output cannot change.
    EXPECT_LT(testing::max_abs_diff(after.narrow(1, 0, 1), before.narrow(1, 0, 1)), 1e-14);
    EXPECT_GT(testing::max_abs_diff(after.narrow(1, 1, 5), before.narrow(1, 1, 5)), 1e-4)
        << "head " << h << " ignores the shared rope key";
  }
}

INSTANTIATE_TEST_SUITE_P(QueryForms, Mla,
                         ::testing::Values(std::optional<int64_t>(kQRank),
                                           std::optional<int64_t>()),
                         [](const auto& info) {
                           return info.param ? std::string("q_lora") : std::string("q_full_rank");
                         });

// ---- The spec's recommended baseline (§8.2)
// ------------------------------------------------------

TEST(MlaBaseline, RecommendedE2048ParameterCountAndInit) {
  Config c = default_config();
  c.model.d_model = 2048;
  c.attention.kind = "mla";
  c.attention.n_heads = 16;
  c.attention.settings.set("attention.mla.q_lora_rank", 1024);
  c.attention.settings.set("attention.mla.kv_lora_rank", 960);
  c.attention.settings.set("attention.mla.qk_rope_head_dim", 64);
  c.attention.settings.set("attention.mla.qk_nope_head_dim", 128);
  c.attention.settings.set("attention.mla.v_head_dim", 128);
  AttentionOptions options;
  options.init_std = 0.02;
  options.output_init_std = 0.005;
  const AttentionGeometry g = attention_geometry(c);
  auto layer = make_attention(g, options);
  std::map<std::string, at::Tensor> p = parameters(*layer);
  int64_t count = 0;
  for (const auto& [name, t] : p) count += t.numel();
  // §8.1: E r_q + r_q n_h (nope+rope) + E (r_kv+rope) + r_kv n_h (nope+v) + n_h v E, + norms.
  const int64_t E = 2048, h = 16, r_q = 1024, r_kv = 960, rope = 64, nope = 128, v = 128;
  const int64_t formula = E * r_q + r_q * h * (nope + rope) + E * (r_kv + rope) +
                          r_kv * h * (nope + v) + h * v * E + r_q + r_kv;
  EXPECT_EQ(count, formula);
  EXPECT_EQ(count, attention_params(g).total());
  EXPECT_EQ(kv_cache_elements_per_token(g), 1024);  // r_kv + rope matches 2E/4

  EXPECT_NEAR(p["q_a_proj.weight"].std().item<double>(), 0.02, 1e-3);
  EXPECT_NEAR(p["kv_b_proj.weight"].std().item<double>(), 0.02, 1e-3);
  EXPECT_NEAR(p["o_proj.weight"].std().item<double>(), 0.005, 2.5e-4);
  EXPECT_TRUE(p["kv_a_norm.weight"].eq(1).all().item<bool>());
}

}  // namespace
}  // namespace cca
