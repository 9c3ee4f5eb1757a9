// Sliding-window attention (kind swa): its descriptor (keys, rules, accounting, texts) and its
// module (windowed outputs against a direct computation, equality with gqa when the window covers
// the sequence, chunked prefill and decode through a cache bounded by the window, gradients).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <torch/autograd.h>

#include "attention/attention.h"
#include "attention/head_projections.h"
#include "config/accounting.h"
#include "config/attention_variant.h"
#include "config/derived.h"
#include "config/loader.h"
#include "testing/checks.h"
#include "util/error.h"

namespace cca {
namespace {

// E = 32, 4 query heads and 2 kv heads of 8, QK-norm, half of each head rotated.
Config small_config(const std::string& kind, int64_t window) {
  Config c = default_config();
  c.model.d_model = 32;
  c.attention.kind = kind;
  c.attention.n_heads = 4;
  c.attention.n_kv_heads = 2;
  c.attention.qk_norm = true;
  c.attention.rope_fraction = 0.5;
  c.attention.rope_theta = 500.0;
  c.attention.settings.set("attention.swa.window", window);
  return c;
}

AttentionOptions test_options() {
  AttentionOptions options;
  options.init_std = 0.3;
  options.output_init_std = 0.3;
  options.rope_theta = 500.0;
  return options;
}

std::shared_ptr<Attention> make_layer(const Config& c) {
  auto layer = make_attention(attention_geometry(c), test_options());
  layer->to(at::kDouble);
  return layer;
}

void copy_weights(const torch::nn::Module& from, torch::nn::Module& to) {
  at::NoGradGuard no_grad;
  auto source = from.named_parameters();
  for (auto& item : to.named_parameters()) item.value().copy_(source[item.key()]);
}

// The same projections, then softmax over each query's window written out one query at a time.
at::Tensor direct_windowed(const Config& c, const torch::nn::Module& layer, const at::Tensor& x,
                           int64_t window) {
  torch::nn::Module holder;
  HeadProjections projections(holder, attention_geometry(c), test_options());
  holder.to(at::kDouble);
  copy_weights(layer, holder);
  const HeadTensors t = projections.project(x, 0, false);
  const int64_t B = x.size(0), Hq = t.q.size(1), S = x.size(1), group = Hq / t.k.size(1);
  const double scale = 1.0 / std::sqrt(static_cast<double>(t.q.size(3)));
  at::Tensor o = at::zeros_like(t.q);
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < Hq; ++h) {
      for (int64_t i = 0; i < S; ++i) {
        const int64_t first = std::max<int64_t>(0, i - window + 1);
        const at::Tensor keys = t.k[b][h / group].narrow(0, first, i - first + 1);
        const at::Tensor values = t.v[b][h / group].narrow(0, first, i - first + 1);
        const at::Tensor weights = at::softmax(at::mv(keys, t.q[b][h][i]) * scale, 0);
        o[b][h][i] = at::mv(values.t(), weights);
      }
    }
  }
  return projections.output(o);
}

TEST(SlidingWindow, EachQuerySeesOnlyItsWindow) {
  at::manual_seed(0);
  for (const int64_t window : {1, 3, 8}) {
    const Config c = small_config("swa", window);
    auto layer = make_layer(c);
    const at::Tensor x = at::randn({2, 13, 32}, at::kDouble);
    EXPECT_LT(testing::max_abs_diff(layer->forward(x), direct_windowed(c, *layer, x, window)),
              1e-12)
        << "window " << window;
  }
}

TEST(SlidingWindow, LongerThanTheSequenceItIsGqa) {
  at::manual_seed(1);
  auto swa = make_layer(small_config("swa", 300));
  auto gqa = make_layer(small_config("gqa", 300));
  copy_weights(*swa, *gqa);  // one parameter layout for mha, gqa and swa
  const at::Tensor x = at::randn({2, 200, 32}, at::kDouble);  // two query chunks
  EXPECT_LT(testing::max_abs_diff(swa->forward(x), gqa->forward(x)), 1e-12);
}

TEST(SlidingWindow, GradientsMatchTheDirectComputation) {
  at::manual_seed(2);
  const Config c = small_config("swa", 4);
  auto layer = make_layer(c);
  const at::Tensor x = at::randn({1, 150, 32}, at::kDouble).requires_grad_(true);
  const at::Tensor grad = at::randn({1, 150, 32}, at::kDouble);
  const at::Tensor dx = torch::autograd::grad({layer->forward(x)}, {x}, {grad})[0];
  const at::Tensor x2 = x.detach().clone().requires_grad_(true);
  const at::Tensor dx2 =
      torch::autograd::grad({direct_windowed(c, *layer, x2, 4)}, {x2}, {grad})[0];
  EXPECT_LT(testing::max_abs_diff(dx, dx2), 1e-11);
}

TEST(SlidingWindow, PrefillChunksAndDecodeMatchOnePassWithABoundedCache) {
  at::manual_seed(3);
  const int64_t window = 5;
  auto layer = make_layer(small_config("swa", window));
  const at::Tensor x = at::randn({2, 24, 32}, at::kDouble);
  at::NoGradGuard no_grad;
  const at::Tensor whole = layer->forward(x);
  auto cache = layer->new_cache();
  std::vector<at::Tensor> parts;
  int64_t at_pos = 0;
  for (const int64_t n : {1, 2, 7, 1, 1, 1, 11}) {
    parts.push_back(layer->forward(x.narrow(1, at_pos, n), cache.get()));
    at_pos += n;
    // Keys and values of at most window - 1 positions, 2 kv heads of 8, float64.
    EXPECT_EQ(cache->bytes(), 2 * 2 * 2 * 8 * 8 * std::min<int64_t>(at_pos, window - 1));
    EXPECT_EQ(cache->length, at_pos);
  }
  ASSERT_EQ(at_pos, 24);
  EXPECT_LT(testing::max_abs_diff(at::cat(parts, 1), whole), 1e-12);
}

TEST(SlidingWindow, ConfigKeysRulesAndTexts) {
  const LoadedConfig loaded = load_config_text(
      "model: {d_model: 64}\n"
      "attention: {kind: swa, n_heads: 8, n_kv_heads: 2, swa: {window: 128}}\n"
      "train: {seq_len: 512}\n",
      "swa.yaml");
  const AttentionGeometry g = attention_geometry(loaded.config);
  EXPECT_EQ(g.n_q_heads, 8);
  EXPECT_EQ(g.n_kv_heads, 2);
  EXPECT_EQ(attention_summary(g),
            "swa: 8 query heads, 2 kv heads (group 4), head_dim 8, rope dims 8; window 128 tokens");
  EXPECT_EQ(attention_label(g), "swa 8q/2kv ×8, window 128");
  // n_kv_heads 0 is a windowed MHA; a kv head count that does not divide the heads is an error.
  EXPECT_EQ(
      attention_geometry(load_config_text("attention: {kind: swa}\n", "a.yaml").config).n_kv_heads,
      12);
  EXPECT_THROW(load_config_text("attention: {kind: swa, n_kv_heads: 5}\n", "b.yaml"), ConfigError);
  EXPECT_THROW(load_config_text("attention: {kind: swa, swa: {window: 0}}\n", "c.yaml"),
               ConfigError);
}

TEST(SlidingWindow, AccountingIsBoundedByTheWindow) {
  Config swa = small_config("swa", 64), gqa = small_config("gqa", 64);
  const AttentionGeometry s = attention_geometry(swa), q = attention_geometry(gqa);
  EXPECT_EQ(attention_params(s).total(), attention_params(q).total());
  EXPECT_EQ(kv_cache_elements_per_token(s), kv_cache_elements_per_token(q));
  // Up to the window it costs what gqa costs; past it, the context term stops growing.
  EXPECT_DOUBLE_EQ(attention_forward_flops_per_token(s, 64, true),
                   attention_forward_flops_per_token(q, 64, true));
  EXPECT_DOUBLE_EQ(attention_decode_flops(s, 50), attention_decode_flops(q, 50));
  EXPECT_DOUBLE_EQ(attention_decode_flops(s, 100000), attention_decode_flops(s, 64));
  EXPECT_LT(attention_forward_flops_per_token(s, 8192, true),
            attention_forward_flops_per_token(s, 64, false) + 1.0);
  EXPECT_EQ(decode_cache_elements(s, 100000), kv_cache_elements_per_token(s) * 63);
  EXPECT_EQ(decode_cache_elements(s, 10), kv_cache_elements_per_token(s) * 10);
  swa.train.seq_len = 4096;
  EXPECT_EQ(derive_values(swa, 1).kv_bytes_per_sequence,
            swa.model.n_layers * 2 * kv_cache_elements_per_token(s) * 63);
}

}  // namespace
}  // namespace cca
