// CCA / CCGQA (lib/attention/cca.cpp) against a slow, written-out version of spec §2.2, plus the
// decode-state, gradient, parameter-count and spec §10 checks. Float64 on CPU.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "attention/attention.h"
#include "attention/cca_reference.h"
#include "config/accounting.h"
#include "config/config.h"
#include "config/geometry.h"
#include "testing/checks.h"
#include "testing/cudnn_tf32.h"

namespace cca {
namespace {

using Params = std::map<std::string, at::Tensor>;
constexpr double kTheta = 50.0;  // a small base, so short test sequences rotate visibly

// ---------------------------------------------------------------------------------------------
// The slow reference: spec §2.2 steps 1-8 with explicit loops.

struct SlowOptions {
  std::string temperature = "exp";
  bool per_conv_padding = false;  // the wrong variant (spec §9.7), to show the module differs
};

struct SlowOutput {
  at::Tensor y;      // [B, S, E]
  at::Tensor q_hat;  // [B, S, n_q, d] after norm and RoPE
  at::Tensor k_hat;  // [B, S, n_k, d] after norm, temperature and RoPE
};

// Step 2: u_t = b1 + Σ_τ a_τ z_{t-τ} with z_{t<0} = 0 (one left pad for the whole stack), then
// s_t = b2 + Σ_τ A_τ u_{t-τ} per head. PyTorch stores lag τ at kernel index k-1-τ.
at::Tensor slow_convs(const CcaGeometry& g, const Params& w, const at::Tensor& z,
                      bool per_conv_padding) {
  if (g.convs == 0) return z.clone();
  const int64_t B = z.size(0), S = z.size(1), M = z.size(2), d = g.head_dim;
  const int64_t k0 = g.conv_kernel_0, k1 = g.conv_kernel_1;
  const auto Z = z.accessor<double, 3>();
  const auto a = w.at("conv_qk.0.weight").accessor<double, 3>();
  const auto b1 = w.at("conv_qk.0.bias").accessor<double, 1>();
  auto u = [&](int64_t b, int64_t t, int64_t c) {
    if (per_conv_padding && t < 0) return 0.0;
    double acc = b1[c];
    for (int64_t lag = 0; lag < k0; ++lag) {
      if (t - lag >= 0) acc += a[c][0][k0 - 1 - lag] * Z[b][t - lag][c];
    }
    return acc;
  };
  at::Tensor s = at::zeros({B, S, M}, at::kDouble);
  auto out = s.accessor<double, 3>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < S; ++t) {
      for (int64_t c = 0; c < M; ++c) out[b][t][c] = g.convs == 1 ? u(b, t, c) : 0.0;
      if (g.convs == 1) continue;
      const auto A = w.at("conv_qk.1.weight").accessor<double, 3>();
      const auto b2 = w.at("conv_qk.1.bias").accessor<double, 1>();
      for (int64_t c = 0; c < M; ++c) {
        double acc = b2[c];
        for (int64_t lag = 0; lag < k1; ++lag) {
          for (int64_t i = 0; i < d; ++i)
            acc += A[c][i][k1 - 1 - lag] * u(b, t - lag, c / d * d + i);
        }
        out[b][t][c] = acc;
      }
    }
  }
  return s;
}

// Step 4: the first W_k/2 flattened channels from x_t W_V1, the rest from x_{t-1} W_V2.
at::Tensor slow_values(const CcaGeometry& g, const Params& w, const at::Tensor& x) {
  if (!g.value_shift) return at::matmul(x, w.at("val_proj.weight").t());
  const at::Tensor current = at::matmul(x, w.at("val_proj1.weight").t());
  const at::Tensor delayed = at::matmul(x, w.at("val_proj2.weight").t());
  const int64_t B = x.size(0), S = x.size(1), width = g.kv_latent_width(), half = width / 2;
  at::Tensor v = at::zeros({B, S, width}, at::kDouble);
  auto V = v.accessor<double, 3>();
  const auto cur = current.accessor<double, 3>(), del = delayed.accessor<double, 3>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < S; ++t) {
      for (int64_t c = 0; c < width; ++c) {
        V[b][t][c] = c < half ? cur[b][t][c] : (t > 0 ? del[b][t - 1][c - half] : 0.0);
      }
    }
  }
  return v;
}

// Steps 5-6 on one head: √d·v/‖v‖·multiplier, then rotate pairs (i, i + r/2) by p·θ^{-2i/r}.
std::vector<double> normalise_and_rotate(std::vector<double> v, double multiplier, int64_t pos,
                                         int64_t rope_dim) {
  double sum = 0;
  for (double e : v) sum += e * e;
  const double scale = std::sqrt(static_cast<double>(v.size())) / std::sqrt(sum) * multiplier;
  for (double& e : v) e *= scale;
  const int64_t half = rope_dim / 2;
  for (int64_t i = 0; i < half; ++i) {
    const double angle = static_cast<double>(pos) * std::pow(kTheta, -2.0 * i / rope_dim);
    const double a = v[i], b = v[i + half];
    v[i] = a * std::cos(angle) - b * std::sin(angle);
    v[i + half] = b * std::cos(angle) + a * std::sin(angle);
  }
  return v;
}

// Steps 1, 3, 5, 6: q̂ and k̂ from the conv output s and the pre-conv projections.
void slow_queries_keys(const CcaGeometry& g, const Params& w, const at::Tensor& s,
                       const at::Tensor& q0, const at::Tensor& k0, const SlowOptions& o,
                       SlowOutput& out) {
  const int64_t B = s.size(0), S = s.size(1), d = g.head_dim, n_q = g.n_q_heads;
  const int64_t n_k = g.n_kv_heads, group = n_q / n_k, width_q = n_q * d;
  out.q_hat = at::zeros({B, S, n_q, d}, at::kDouble);
  out.k_hat = at::zeros({B, S, n_k, d}, at::kDouble);
  auto Qh = out.q_hat.accessor<double, 4>();
  auto Kh = out.k_hat.accessor<double, 4>();
  const auto Sv = s.accessor<double, 3>(), Q0 = q0.accessor<double, 3>(),
             K0 = k0.accessor<double, 3>();
  const auto beta = w.at("temp").accessor<double, 1>();
  // m^Q_{t,h} = ½(q⁰_h + k⁰_{h/g}), m^K_{t,j} = mean over h in group j of m^Q_{t,h}.
  auto mean_q = [&](int64_t b, int64_t t, int64_t h, int64_t i) {
    return 0.5 * (Q0[b][t][h * d + i] + K0[b][t][(h / group) * d + i]);
  };
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < S; ++t) {
      for (int64_t h = 0; h < n_q; ++h) {
        std::vector<double> v(d);
        for (int64_t i = 0; i < d; ++i)
          v[i] = Sv[b][t][h * d + i] + (g.qk_mean ? mean_q(b, t, h, i) : 0);
        const auto r = normalise_and_rotate(v, 1.0, t, g.rope_dim);
        for (int64_t i = 0; i < d; ++i) Qh[b][t][h][i] = r[i];
      }
      for (int64_t j = 0; j < n_k; ++j) {
        std::vector<double> v(d);
        for (int64_t i = 0; i < d; ++i) {
          double mean = 0;
          for (int64_t h = j * group; h < (j + 1) * group; ++h) mean += mean_q(b, t, h, i) / group;
          v[i] = Sv[b][t][width_q + j * d + i] + (g.qk_mean ? mean : 0);
        }
        const double tau = o.temperature == "exp" ? std::exp(beta[j]) : beta[j];
        const auto r = normalise_and_rotate(v, tau, t, g.rope_dim);
        for (int64_t i = 0; i < d; ++i) Kh[b][t][j][i] = r[i];
      }
    }
  }
}

SlowOutput slow_cca(const CcaGeometry& g, const Params& w, const at::Tensor& x,
                    const SlowOptions& o = {}) {
  const int64_t B = x.size(0), S = x.size(1), d = g.head_dim, n_q = g.n_q_heads;
  const int64_t group = n_q / g.n_kv_heads;
  const at::Tensor q0 = at::matmul(x, w.at("linear_q.weight").t());
  const at::Tensor k0 = at::matmul(x, w.at("linear_k.weight").t());
  const at::Tensor s = slow_convs(g, w, at::cat({q0, k0}, -1), o.per_conv_padding);
  const at::Tensor v = slow_values(g, w, x);
  SlowOutput out;
  slow_queries_keys(g, w, s, q0, k0, o, out);
  // Step 7: causal softmax of ⟨q̂_t, k̂_s⟩/√d over s ≤ t; query head h reads kv head h/g.
  at::Tensor heads = at::zeros({B, S, n_q * d}, at::kDouble);
  auto O = heads.accessor<double, 3>();
  const auto Qh = out.q_hat.accessor<double, 4>(), Kh = out.k_hat.accessor<double, 4>();
  const auto V = v.accessor<double, 3>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < n_q; ++h) {
      const int64_t j = h / group;
      for (int64_t t = 0; t < S; ++t) {
        std::vector<double> p(t + 1);
        double top = -1e300, total = 0;
        for (int64_t u = 0; u <= t; ++u) {
          double dot = 0;
          for (int64_t i = 0; i < d; ++i) dot += Qh[b][t][h][i] * Kh[b][u][j][i];
          p[u] = dot / std::sqrt(static_cast<double>(d));
          top = std::max(top, p[u]);
        }
        for (double& e : p) total += (e = std::exp(e - top));
        for (int64_t i = 0; i < d; ++i) {
          double acc = 0;
          for (int64_t u = 0; u <= t; ++u) acc += p[u] / total * V[b][u][j * d + i];
          O[b][t][h * d + i] = acc;
        }
      }
    }
  }
  out.y = at::matmul(heads, w.at("o_proj.weight").t());  // step 8
  return out;
}

// ---------------------------------------------------------------------------------------------
// Layers under test.

struct Case {
  std::string name;
  std::string kind;
  int64_t E, q_compression, kv_compression;
  int64_t convs, k0, k1;
  bool qk_mean, value_shift;
  std::string temperature;
  double rope_fraction;
  int64_t seq;
};

Config case_config(const Case& c) {
  Config cfg = default_config();
  cfg.model.d_model = c.E;
  cfg.attention.kind = c.kind;
  cfg.attention.head_dim = 8;
  cfg.attention.n_heads = c.E / 8;
  cfg.attention.rope_theta = kTheta;
  cfg.attention.rope_fraction = c.rope_fraction;
  VariantSettings& s = cfg.attention.settings;
  s.set("attention.cca.q_compression", c.q_compression);
  s.set("attention.cca.kv_compression", c.kv_compression);
  s.set("attention.cca.convs", c.convs);
  s.set("attention.cca.conv_kernel_0", c.k0);
  s.set("attention.cca.conv_kernel_1", c.k1);
  s.set("attention.cca.qk_mean", c.qk_mean);
  s.set("attention.cca.value_shift", c.value_shift);
  s.set("attention.cca.temperature", c.temperature);
  s.set("attention.cca.kernels", "reference");
  return cfg;
}

Params parameters_of(const torch::nn::Module& layer) {
  Params p;
  for (const auto& item : layer.named_parameters()) p[item.key()] = item.value().detach();
  return p;
}

// Random convs, biases and temperature, so every tap, the boundary bias and τ matter.
void randomise(Attention& layer, const std::string& temperature) {
  at::NoGradGuard no_grad;
  for (auto& item : layer.named_parameters()) {
    at::Tensor p = item.value();
    if (item.key() == "temp") {
      p.copy_(temperature == "exp" ? at::randn_like(p) * 0.4 : at::randn_like(p) * 0.6 + 1.0);
    } else if (item.key().rfind("conv_qk", 0) == 0) {
      p.copy_(at::randn_like(p) * 0.4);
    }
  }
}

std::shared_ptr<Attention> make_layer(const Config& cfg, bool random = true) {
  AttentionOptions options;
  options.init_std = 0.2;
  options.output_init_std = 0.2;
  options.rope_theta = cfg.attention.rope_theta;
  auto layer = make_attention(attention_geometry(cfg), options);
  layer->to(at::kDouble);
  if (random) randomise(*layer, cfg.attention.settings.text("attention.cca.temperature"));
  return layer;
}

const Case kG1{"cca_g1", "cca", 32, 2, 2, 2, 2, 2, true, true, "exp", 0.5, 7};
const Case kG2{"ccgqa_g2", "ccgqa", 64, 2, 4, 2, 3, 2, true, true, "raw", 1.0, 9};
const Case kG4{"ccgqa_g4", "ccgqa", 64, 1, 4, 2, 2, 3, true, true, "exp", 0.5, 9};

std::vector<Case> all_cases() {
  return {kG1,
          kG2,
          kG4,
          {"mqa_value_split_inside_head", "ccgqa", 32, 2, 4, 2, 3, 3, true, true, "raw", 0.5, 9},
          {"cca_three_heads", "cca", 48, 2, 2, 2, 2, 2, true, true, "exp", 1.0, 7},
          {"convs0", "ccgqa", 64, 2, 4, 0, 2, 2, true, true, "exp", 0.5, 9},
          {"convs1_k3", "ccgqa", 64, 2, 4, 1, 3, 2, true, true, "raw", 0.5, 7},
          {"depthwise_k1_grouped_k3", "ccgqa", 64, 2, 4, 2, 1, 3, true, true, "exp", 0.5, 7},
          {"no_qk_mean", "ccgqa", 64, 2, 4, 2, 2, 2, false, true, "exp", 0.5, 9},
          {"no_value_shift", "ccgqa", 64, 2, 4, 2, 2, 2, true, false, "raw", 0.5, 9},
          {"bare", "cca", 32, 2, 2, 0, 2, 2, false, false, "raw", 1.0, 7}};
}

class CcaCase : public ::testing::TestWithParam<Case> {};

TEST_P(CcaCase, MatchesSlowReference) {
  const Config cfg = case_config(GetParam());
  auto layer = make_layer(cfg);
  at::manual_seed(1);
  const at::Tensor x = at::randn({2, GetParam().seq, GetParam().E}, at::kDouble);
  const at::Tensor y = layer->forward(x, nullptr);
  const SlowOutput ref = slow_cca(variants::cca_geometry(attention_geometry(cfg)),
                                  parameters_of(*layer), x, {GetParam().temperature, false});
  EXPECT_GT(ref.y.abs().max().item<double>(), 1e-2);
  EXPECT_LT(testing::max_abs_diff(y, ref.y), 1e-10);
}

TEST_P(CcaCase, Causal) {
  auto layer = make_layer(case_config(GetParam()));
  testing::expect_causal([&](const at::Tensor& x) { return layer->forward(x, nullptr); }, 2,
                         GetParam().seq, GetParam().E);
}

TEST_P(CcaCase, PrefillChunkedDecodeAgree) {
  auto layer = make_layer(case_config(GetParam()));
  // A first chunk of 1 and chunks shorter than P (up to 4 here) carry the conv state partly.
  testing::expect_prefill_chunked_decode_agree(*layer, 2, GetParam().seq, GetParam().E,
                                               {1, 2, 1, 3});
  testing::expect_prefill_chunked_decode_agree(*layer, 1, GetParam().seq, GetParam().E, {3, 5});
}

TEST_P(CcaCase, ParametersAndCacheBytesMatchAccounting) {
  const Config cfg = case_config(GetParam());
  const CcaGeometry g = variants::cca_geometry(attention_geometry(cfg));
  auto layer = make_layer(cfg);
  int64_t count = 0;
  for (const auto& p : layer->parameters()) count += p.numel();
  EXPECT_EQ(count, attention_params(g).total());
  const Params w = parameters_of(*layer);  // ablated parts have no parameters
  EXPECT_EQ(w.count("val_proj.weight"), g.value_shift ? 0u : 1u);
  EXPECT_EQ(w.count("val_proj2.weight"), g.value_shift ? 1u : 0u);
  EXPECT_EQ(w.count("conv_qk.0.bias"), g.convs >= 1 ? 1u : 0u);
  EXPECT_EQ(w.count("conv_qk.1.bias"), g.convs == 2 ? 1u : 0u);
  auto cache = layer->new_cache();
  const int64_t B = 3, S = 5;
  layer->forward(at::randn({B, S, g.model_dim}, at::kDouble), cache.get());
  const int64_t shift = g.value_shift ? B * g.kv_latent_width() / 2 : 0;
  EXPECT_EQ(cache->bytes(), 8 * (B * S * 2 * g.n_kv_heads * g.head_dim +
                                 B * g.conv_channels() * g.conv_padding() + shift));
  EXPECT_EQ(cache->length, S);
}

INSTANTIATE_TEST_SUITE_P(Geometries, CcaCase, ::testing::ValuesIn(all_cases()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// The decode state and the conv-bias boundary effect (spec §2.2 step 2, §4, §9.7).

TEST(CcaDecode, DepthwiseBiasReachesTheFirstTokensAndDecodeKeepsIt) {
  const Config cfg = case_config({"k1_3", "ccgqa", 64, 2, 4, 2, 2, 3, true, true, "exp", 0.5, 6});
  const CcaGeometry g = variants::cca_geometry(attention_geometry(cfg));
  auto layer = make_layer(cfg);
  at::manual_seed(5);
  const at::Tensor x = at::randn({2, 6, g.model_dim}, at::kDouble);
  // Output 0 attends only to itself (it is ṽ_0 whatever the keys), so the boundary shows in the
  // cached keys of tokens 0 and 1 and in the outputs from token 1 on.
  auto keys_and_output = [&](Attention& l) {
    auto cache = l.new_cache();
    const at::Tensor y = l.forward(x, cache.get());
    const at::Tensor keys = dynamic_cast<const CcaCache&>(*cache).kv.keys.filled().narrow(2, 0, 2);
    return std::make_pair(keys.transpose(1, 2), y);
  };
  const auto [keys, y] = keys_and_output(*layer);
  const Params w = parameters_of(*layer);
  // The intermediate u at t < 0 is b1 (one pad for the stack), not 0 (a pad per conv).
  const SlowOutput ref = slow_cca(g, w, x), per_conv = slow_cca(g, w, x, {"exp", true});
  EXPECT_LT(testing::max_abs_diff(y, ref.y), 1e-10);
  EXPECT_LT(testing::max_abs_diff(keys, ref.k_hat.narrow(1, 0, 2)), 1e-12);
  EXPECT_GT(testing::max_abs_diff(keys.select(1, 0), per_conv.k_hat.select(1, 0)), 1e-3);
  EXPECT_GT(testing::max_abs_diff(y.select(1, 1), per_conv.y.select(1, 1)), 1e-4);
  // Token-by-token decode from an empty state reproduces it.
  testing::expect_prefill_chunked_decode_agree(*layer, 2, 6, g.model_dim, {1, 1});
  // The first keys and outputs move with the depthwise bias alone, and decode follows.
  layer->named_parameters()["conv_qk.0.bias"].detach().mul_(-1.5);
  const auto [keys2, y2] = keys_and_output(*layer);
  EXPECT_GT(testing::max_abs_diff(keys2.select(1, 0), keys.select(1, 0)), 1e-3);
  EXPECT_GT(testing::max_abs_diff(y2.select(1, 1), y.select(1, 1)), 1e-4);
  testing::expect_prefill_chunked_decode_agree(*layer, 2, 6, g.model_dim, {1, 1});
}

TEST(CcaDecode, StateHoldsRawProjectionsAndTheDelayedValue) {
  const Config cfg = case_config(kG2);  // k0 = 3, k1 = 2: P = 3
  const CcaGeometry g = variants::cca_geometry(attention_geometry(cfg));
  auto layer = make_layer(cfg);
  const Params w = parameters_of(*layer);
  const int64_t P = g.conv_padding(), M = g.conv_channels();
  ASSERT_EQ(P, 3);
  auto cache = layer->new_cache();
  const at::Tensor x = at::randn({2, 2, g.model_dim}, at::kDouble);  // fewer tokens than P
  layer->forward(x, cache.get());
  const auto& state = dynamic_cast<const CcaCache&>(*cache);
  const at::Tensor z = at::cat(
      {at::matmul(x, w.at("linear_q.weight").t()), at::matmul(x, w.at("linear_k.weight").t())},
      -1);  // [B, 2, M]
  ASSERT_EQ(state.conv.sizes(), at::IntArrayRef({2, M, P}));
  EXPECT_EQ(state.conv.select(2, 0).abs().max().item<double>(), 0.0);  // the prefill's zero pad
  EXPECT_LT(testing::max_abs_diff(state.conv.narrow(2, 1, 2), z.transpose(1, 2)), 1e-14);
  const at::Tensor delayed = at::matmul(x.select(1, 1), w.at("val_proj2.weight").t());
  EXPECT_LT(testing::max_abs_diff(state.shift, delayed), 1e-14);
  // Keys are cached after norm and temperature: ‖k̂_j‖ = |τ_j|√d.
  const at::Tensor tau = w.at("temp").abs();                    // raw form
  const at::Tensor norms = state.kv.keys.filled().norm(2, -1);  // [B, n_k, S]
  EXPECT_LT(testing::max_abs_diff(norms, (tau * std::sqrt(8.0)).view({1, -1, 1}).expand_as(norms)),
            1e-12);
  struct OtherCache : AttentionCache {
    int64_t bytes() const override { return 0; }
  } other;
  EXPECT_THROW(layer->forward(x, &other), std::exception);
}

// ---------------------------------------------------------------------------------------------
// Gradients.

TEST(CcaGradients, MatchFiniteDifferences) {
  for (const Case& c : {kG1, kG2}) {
    SCOPED_TRACE(c.name);
    auto layer = make_layer(case_config(c));  // convs = 2, τ random (exp: β≠0; raw: τ≠1)
    testing::expect_gradients_match(
        *layer, [&](const at::Tensor& x) { return layer->forward(x, nullptr); },
        at::randn({2, 5, c.E}, at::kDouble));
  }
}

// ---------------------------------------------------------------------------------------------
// Parameters: names, shapes, count and initialisation.

Config zaya1_config() {
  Config cfg = default_config();
  cfg.model.d_model = 2048;
  cfg.attention.kind = "ccgqa";
  cfg.attention.n_heads = 16;  // d = 2048 / 16 = 128
  cfg.attention.rope_fraction = 0.5;
  cfg.attention.settings.set("attention.cca.q_compression", 2);
  cfg.attention.settings.set("attention.cca.kv_compression", 8);
  cfg.attention.settings.set("attention.cca.conv_kernel_0", 2);
  cfg.attention.settings.set("attention.cca.conv_kernel_1", 2);
  return cfg;
}

TEST(CcaParameters, Zaya1LayerHasTheSpecsCountNamesAndShapes) {
  const CcaGeometry g = variants::cca_geometry(attention_geometry(zaya1_config()));
  auto layer = make_attention(g, AttentionOptions{});  // float32
  std::map<std::string, std::vector<int64_t>> shapes;
  int64_t count = 0;
  for (const auto& item : layer->named_parameters()) {
    shapes[item.key()] = item.value().sizes().vec();
    count += item.value().numel();
  }
  EXPECT_EQ(count, 5575682);
  EXPECT_EQ(attention_params(g).total(), 5575682);
  const std::map<std::string, std::vector<int64_t>> expected = {
      {"linear_q.weight", {1024, 2048}},
      {"linear_k.weight", {256, 2048}},
      {"val_proj1.weight", {128, 2048}},
      {"val_proj2.weight", {128, 2048}},
      {"conv_qk.0.weight", {1280, 1, 2}},
      {"conv_qk.0.bias", {1280}},
      {"conv_qk.1.weight", {1280, 128, 2}},
      {"conv_qk.1.bias", {1280}},
      {"temp", {2}},
      {"o_proj.weight", {2048, 1024}}};
  EXPECT_EQ(shapes, expected);
  // 512 cached elements per token: 4 bytes each in float32, plus the constant state.
  EXPECT_EQ(kv_cache_elements_per_token(g), 512);
  at::NoGradGuard no_grad;
  auto cache = layer->new_cache();
  layer->forward(at::randn({1, 3, 2048}), cache.get());
  EXPECT_EQ(cache->bytes(), 4 * (3 * 512 + 1280 * 2 + 128));
}

TEST(CcaParameters, InitialisationFollowsTheOptionsAndSettings) {
  Config cfg = zaya1_config();
  AttentionOptions options;
  options.init_std = 0.02;
  options.output_init_std = 0.005;
  for (const std::string form : {"exp", "raw"}) {
    cfg.attention.settings.set("attention.cca.temperature", form);
    const Params w = parameters_of(*make_attention(attention_geometry(cfg), options));
    EXPECT_EQ(w.at("temp").sub(form == "exp" ? 0.0 : 1.0).abs().max().item<double>(), 0.0);
    EXPECT_NEAR(w.at("linear_q.weight").std().item<double>(), 0.02, 0.0005);
    EXPECT_NEAR(w.at("val_proj2.weight").std().item<double>(), 0.02, 0.0005);
    EXPECT_NEAR(w.at("o_proj.weight").std().item<double>(), 0.005, 0.0002);
  }
  cfg.attention.settings.set("attention.cca.temperature", "linear");
  EXPECT_THROW(make_attention(attention_geometry(cfg), options), std::exception);
}

TEST(CcaParameters, ConvStackStartsAsTheIdentity) {
  Case with = kG4, without = kG4;
  without.convs = 0;
  auto a = make_layer(case_config(with), false);
  auto b = make_layer(case_config(without), false);
  at::NoGradGuard no_grad;
  const Params wa = parameters_of(*a);
  for (auto& item : b->named_parameters()) item.value().copy_(wa.at(item.key()));
  const at::Tensor x = at::randn({2, 6, 64}, at::kDouble);
  EXPECT_LT(testing::max_abs_diff(a->forward(x, nullptr), b->forward(x, nullptr)), 1e-13);
}

// ---------------------------------------------------------------------------------------------
// Spec §10.

CcaConvWeights conv_weights_of(const Params& w) {
  auto get = [&](const std::string& name) { return w.count(name) ? w.at(name) : at::Tensor(); };
  return {get("conv_qk.0.weight"), get("conv_qk.0.bias"), get("conv_qk.1.weight"),
          get("conv_qk.1.bias")};
}

TEST(CcaSpecChecks, PlainCcaAddsTheSameVectorToQueriesAndKeys) {
  const at::Tensor q0 = at::randn({2, 5, 3, 8}, at::kDouble), k0 = at::randn_like(q0);
  const auto [mean_q, mean_k] = cca_qk_mean(q0, k0);
  EXPECT_EQ(testing::max_abs_diff(mean_q, mean_k), 0.0);
  EXPECT_LT(testing::max_abs_diff(mean_q, (q0 + k0) / 2), 1e-15);
  // Grouped (g = 3): m^K_j = ½(mean of the group's q⁰ + k⁰_j).
  const at::Tensor k0_one = at::randn({2, 5, 1, 8}, at::kDouble);
  const auto [gq, gk] = cca_qk_mean(q0, k0_one);
  EXPECT_LT(testing::max_abs_diff(gk, (q0.mean(2, true) + k0_one) / 2), 1e-15);
  // Through the whole prologue, with zero convs: q̂ = k̂ when τ = 1.
  const CcaGeometry g = variants::cca_geometry(attention_geometry(case_config(kG1)));
  const int64_t M = g.conv_channels();
  const CcaConvWeights zero{at::zeros({M, 1, 2}, at::kDouble), at::zeros({M}, at::kDouble),
                            at::zeros({M, 8, 2}, at::kDouble), at::zeros({M}, at::kDouble)};
  const at::Tensor x0 = at::randn({2, 5, g.q_latent_width()}, at::kDouble);
  const CcaProjections p{x0, at::randn_like(x0), at::randn({2, 5, 8}, at::kDouble),
                         at::randn({2, 5, 8}, at::kDouble)};
  const CcaPrologueOutput out =
      cca_prologue(g, Rotary(g.rope_dim, kTheta), zero, at::ones({2}, at::kDouble), p, {}, {}, 3);
  EXPECT_LT(testing::max_abs_diff(out.q, out.k), 1e-14);
}

TEST(CcaSpecChecks, LogitsStayWithinTauRootD) {
  for (const Case& c : {kG2, kG4}) {
    SCOPED_TRACE(c.name);
    const Config cfg = case_config(c);
    const CcaGeometry g = variants::cca_geometry(attention_geometry(cfg));
    auto layer = make_layer(cfg);
    const Params w = parameters_of(*layer);
    const at::Tensor x = at::randn({2, c.seq, c.E}, at::kDouble) * 50;  // large inputs
    // q̂ and k̂ of the module's own prologue, checked against the slow reference.
    const at::Tensor tau = c.temperature == "exp" ? w.at("temp").exp() : w.at("temp");
    const CcaProjections p{
        at::matmul(x, w.at("linear_q.weight").t()), at::matmul(x, w.at("linear_k.weight").t()),
        at::matmul(x, w.at("val_proj1.weight").t()), at::matmul(x, w.at("val_proj2.weight").t())};
    const CcaPrologueOutput out =
        cca_prologue(g, Rotary(g.rope_dim, kTheta), conv_weights_of(w), tau, p, {}, {}, 0);
    const SlowOutput ref = slow_cca(g, w, x, {c.temperature, false});
    EXPECT_LT(testing::max_abs_diff(out.q, ref.q_hat), 1e-12);
    EXPECT_LT(testing::max_abs_diff(out.k, ref.k_hat), 1e-12);
    // The module caches the same keys.
    auto cache = layer->new_cache();
    layer->forward(x, cache.get());
    const auto& state = dynamic_cast<const CcaCache&>(*cache);
    EXPECT_LT(testing::max_abs_diff(state.kv.keys.filled(), out.k.transpose(1, 2)), 1e-12);
    // Every logit ⟨q̂_h, k̂_{h/g}⟩/√d lies within ±|τ_j|√d.
    const int64_t group = g.group_size();
    const double root_d = std::sqrt(static_cast<double>(g.head_dim));
    for (int64_t h = 0; h < g.n_q_heads; ++h) {
      const int64_t j = h / group;
      const at::Tensor logits = at::matmul(out.q.select(2, h), out.k.select(2, j).transpose(1, 2));
      const double bound = std::fabs(tau[j].item<double>()) * root_d;
      EXPECT_LE(logits.div(root_d).abs().max().item<double>(), bound * (1 + 1e-12));
    }
  }
}

// Outputs of each query head before o_proj: o_proj is set to [I; 0].
at::Tensor head_outputs(Attention& layer, const CcaGeometry& g, const at::Tensor& x) {
  const at::Tensor y = layer.forward(x, nullptr);
  return y.narrow(2, 0, g.q_latent_width()).reshape({x.size(0), x.size(1), g.n_q_heads, -1});
}

// Adds noise to rows [first, first + count) of `name`, returns which query heads' outputs moved.
std::vector<bool> heads_moved_by(Attention& layer, const CcaGeometry& g, const at::Tensor& x,
                                 const std::string& name, int64_t first, int64_t count) {
  at::NoGradGuard no_grad;
  const at::Tensor before = head_outputs(layer, g, x);
  at::Tensor weight = layer.named_parameters()[name];
  const at::Tensor saved = weight.clone();
  weight.narrow(0, first, count).add_(at::randn({count, weight.size(1)}, at::kDouble) * 0.3);
  const at::Tensor diff = (head_outputs(layer, g, x) - before).abs().amax({0, 1, 3});
  weight.copy_(saved);
  std::vector<bool> moved;
  for (int64_t h = 0; h < g.n_q_heads; ++h) {
    const double change = diff[h].item<double>();
    EXPECT_TRUE(change > 1e-6 || change < 1e-13) << name << " head " << h << " moved " << change;
    moved.push_back(change > 1e-6);
  }
  return moved;
}

TEST(CcaSpecChecks, QueryHeadUsesKvHeadFloorHOverG) {
  for (const Case& c : {kG2, kG4}) {
    SCOPED_TRACE(c.name);
    const CcaGeometry g = variants::cca_geometry(attention_geometry(case_config(c)));
    auto layer = make_layer(case_config(c));
    at::NoGradGuard no_grad;
    at::Tensor o = layer->named_parameters()["o_proj.weight"];
    o.zero_();
    o.narrow(0, 0, g.q_latent_width()).copy_(at::eye(g.q_latent_width(), at::kDouble));
    const int64_t d = g.head_dim, group = g.group_size(), half = g.kv_latent_width() / 2;
    const at::Tensor x = at::randn({2, c.seq, c.E}, at::kDouble);
    for (int64_t j = 0; j < g.n_kv_heads; ++j) {
      std::vector<bool> expected;
      for (int64_t h = 0; h < g.n_q_heads; ++h) expected.push_back(h / group == j);
      // Keys (conv, q-k mean, attention) of kv head j.
      EXPECT_EQ(heads_moved_by(*layer, g, x, "linear_k.weight", j * d, d), expected) << "kv " << j;
      // Values of kv head j: current-token half, else previous-token half (n_k = 2 here).
      const bool current = j * d < half;
      EXPECT_EQ(heads_moved_by(*layer, g, x, current ? "val_proj1.weight" : "val_proj2.weight",
                               current ? j * d : j * d - half, d),
                expected)
          << "values of kv " << j;
      // A query head's projection reaches its group's key through the group mean.
      EXPECT_EQ(heads_moved_by(*layer, g, x, "linear_q.weight", j * group * d, d), expected)
          << "query head " << j * group;
    }
    // The heads reading the previous-token half see only zeros at t = 0.
    const at::Tensor first = head_outputs(*layer, g, x).select(1, 0);  // [B, n_q, d]
    EXPECT_GT(first.narrow(1, 0, group).abs().max().item<double>(), 1e-6);
    EXPECT_EQ(first.narrow(1, group, group).abs().max().item<double>(), 0.0);
  }
}

// ---------------------------------------------------------------------------------------------
// CUDA: the same layer in float32 (and bf16) against float64 on the CPU. Skipped without a GPU.

TEST(CcaCuda, MatchesCpuAndDecodesInFloat32AndBf16) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const testing::NoCudnnTf32 no_tf32;  // float32 arithmetic, not TF32's
  const Config cfg = case_config(kG4);
  auto layer = make_layer(cfg);
  const at::Tensor x = at::randn({2, 33, 64}, at::kDouble);
  const at::Tensor expected = layer->forward(x, nullptr);
  const double scale = expected.abs().max().item<double>();
  layer->to(at::kCUDA, at::kFloat);
  const at::Tensor xf = x.to(at::kCUDA, at::kFloat);
  const at::Tensor full = layer->forward(xf, nullptr);
  EXPECT_LT(testing::max_abs_diff(full.cpu().to(at::kDouble), expected), 1e-5 * scale);
  auto cache = layer->new_cache();
  std::vector<at::Tensor> pieces;
  for (int64_t start = 0; start < 33; start += (start < 4 ? 1 : 7)) {
    const int64_t size = std::min<int64_t>(start < 4 ? 1 : 7, 33 - start);
    pieces.push_back(layer->forward(xf.narrow(1, start, size), cache.get()));
  }
  EXPECT_LT(testing::max_abs_diff(at::cat(pieces, 1).cpu().to(at::kDouble), expected),
            1e-5 * scale);
  layer->to(at::kBFloat16);
  const at::Tensor half = layer->forward(x.to(at::kCUDA, at::kBFloat16), nullptr);
  EXPECT_LT(testing::max_abs_diff(half.cpu().to(at::kDouble), expected), 5e-2 * scale);
}

}  // namespace
}  // namespace cca
