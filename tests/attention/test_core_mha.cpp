#include <gtest/gtest.h>

#include <cmath>

#include "attention/attention.h"
#include "attention/core.h"
#include "config/config.h"
#include "config/geometry.h"
#include "ops/rope.h"
#include "testing/checks.h"

namespace cca {
namespace {

// Direct softmax attention, one query at a time, with explicit GQA head mapping.
at::Tensor slow_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          double scale) {
  const int64_t B = q.size(0), Hq = q.size(1), Sq = q.size(2), Sk = k.size(2);
  const int64_t group = Hq / k.size(1);
  at::Tensor out = at::zeros({B, Hq, Sq, v.size(3)}, q.options());
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < Hq; ++h) {
      for (int64_t i = 0; i < Sq; ++i) {
        const int64_t visible = Sk - Sq + i + 1;
        const at::Tensor keys = k[b][h / group].narrow(0, 0, visible);
        const at::Tensor scores = at::mv(keys, q[b][h][i]) * scale;
        out[b][h][i] = at::mv(v[b][h / group].narrow(0, 0, visible).t(), at::softmax(scores, 0));
      }
    }
  }
  return out;
}

TEST(CoreAttention, MatchesDirectSoftmaxWithGqaAndOffsets) {
  at::manual_seed(0);
  for (auto [hq, hkv, sq, sk] : std::vector<std::array<int64_t, 4>>{
           {4, 4, 7, 7}, {4, 2, 7, 7}, {6, 1, 5, 5}, {4, 2, 3, 9}, {4, 4, 1, 6}}) {
    const at::Tensor q = at::randn({2, hq, sq, 8}, at::kDouble);
    const at::Tensor k = at::randn({2, hkv, sk, 8}, at::kDouble);
    const at::Tensor v = at::randn({2, hkv, sk, 5}, at::kDouble);
    const at::Tensor got = core_attention(q, k, v, 0.3);
    EXPECT_LT(testing::max_abs_diff(got, slow_attention(q, k, v, 0.3)), 1e-12)
        << "hq " << hq << " hkv " << hkv << " sq " << sq << " sk " << sk;
  }
}

TEST(CoreAttention, RejectsBadShapes) {
  const at::Tensor q = at::randn({1, 3, 4, 8});
  const at::Tensor k = at::randn({1, 2, 4, 8});
  EXPECT_THROW(core_attention(q, k, k, 1.0), c10::Error);
  EXPECT_THROW(core_attention(at::randn({1, 2, 5, 8}), k, k, 1.0), c10::Error);
  EXPECT_THROW(parse_core_backend("fastest"), std::exception);
}

TEST(Rotary, RotatesPairsAndPreservesNorms) {
  const Rotary full(8, 10000.0);
  const at::Tensor x = at::randn({2, 5, 3, 8}, at::kDouble);
  const at::Tensor y = full.apply(x, 0);
  EXPECT_LT(testing::max_abs_diff(y.narrow(1, 0, 1), x.narrow(1, 0, 1)), 1e-15);  // position 0
  EXPECT_LT(testing::max_abs_diff(y.norm(2, -1), x.norm(2, -1)), 1e-12);
  // Position p, pair (0, 4): angle p · θ^0 = p.
  const double a = x[0][3][1][0].item<double>(), b = x[0][3][1][4].item<double>();
  EXPECT_NEAR(y[0][3][1][0].item<double>(), a * std::cos(3.0) - b * std::sin(3.0), 1e-12);
  EXPECT_NEAR(y[0][3][1][4].item<double>(), b * std::cos(3.0) + a * std::sin(3.0), 1e-12);
  // Offsets: rotating positions 2..4 with offset 2 equals slicing the full rotation.
  EXPECT_LT(testing::max_abs_diff(full.apply(x.narrow(1, 2, 3), 2), y.narrow(1, 2, 3)), 1e-12);
  // Partial: only the first r dims change.
  const at::Tensor p = Rotary(4, 10000.0).apply(x, 1);
  EXPECT_LT(testing::max_abs_diff(p.narrow(-1, 4, 4), x.narrow(-1, 4, 4)), 1e-15);
  EXPECT_GT(testing::max_abs_diff(p.narrow(-1, 0, 4), x.narrow(-1, 0, 4)), 1e-3);
  // Relative positions: <R_m q, R_n k> depends on m - n only.
  const at::Tensor q = at::randn({1, 1, 1, 8}, at::kDouble),
                   k = at::randn({1, 1, 1, 8}, at::kDouble);
  const double d1 = (full.apply(q, 5) * full.apply(k, 2)).sum().item<double>();
  const double d2 = (full.apply(q, 9) * full.apply(k, 6)).sum().item<double>();
  EXPECT_NEAR(d1, d2, 1e-12);
}

Config small_config(const std::string& kind, int64_t kv_heads, bool qk_norm) {
  Config c = default_config();
  c.model.d_model = 32;
  c.attention.kind = kind;
  c.attention.n_heads = 4;
  c.attention.n_kv_heads = kv_heads;
  c.attention.qk_norm = qk_norm;
  c.attention.rope_fraction = 0.5;
  return c;
}

std::shared_ptr<Attention> make_layer(const Config& c) {
  AttentionOptions options;
  options.init_std = 0.2;
  options.output_init_std = 0.2;
  auto layer = make_attention(attention_geometry(c), options);
  layer->to(at::kDouble);
  return layer;
}

struct Variant {
  std::string kind;
  int64_t kv_heads;
  bool qk_norm;
};

class MhaGqa : public ::testing::TestWithParam<Variant> {};

TEST_P(MhaGqa, Causal) {
  auto layer = make_layer(small_config(GetParam().kind, GetParam().kv_heads, GetParam().qk_norm));
  testing::expect_causal([&](const at::Tensor& x) { return layer->forward(x, nullptr); }, 2, 9, 32);
}

TEST_P(MhaGqa, PrefillChunkedDecodeAgree) {
  auto layer = make_layer(small_config(GetParam().kind, GetParam().kv_heads, GetParam().qk_norm));
  testing::expect_prefill_chunked_decode_agree(*layer, 2, 11, 32, {3, 1, 4});
}

TEST_P(MhaGqa, GradientsMatchFiniteDifferences) {
  auto layer = make_layer(small_config(GetParam().kind, GetParam().kv_heads, GetParam().qk_norm));
  testing::expect_gradients_match(
      *layer, [&](const at::Tensor& x) { return layer->forward(x, nullptr); },
      at::randn({2, 5, 32}, at::kDouble));
}

TEST_P(MhaGqa, CacheHoldsKeysAndValuesOfEveryKvHead) {
  const Config c = small_config(GetParam().kind, GetParam().kv_heads, GetParam().qk_norm);
  auto layer = make_layer(c);
  auto cache = layer->new_cache();
  layer->forward(at::randn({3, 7, 32}, at::kDouble), cache.get());
  const AttentionGeometry g = attention_geometry(c);
  EXPECT_EQ(cache->bytes(), 3 * 7 * 2 * g.n_kv_heads * g.head_dim * 8);
}

INSTANTIATE_TEST_SUITE_P(Variants, MhaGqa,
                         ::testing::Values(Variant{"mha", 0, false}, Variant{"mha", 0, true},
                                           Variant{"gqa", 2, false}, Variant{"gqa", 1, true}),
                         [](const auto& info) {
                           return info.param.kind + "_kv" + std::to_string(info.param.kv_heads) +
                                  (info.param.qk_norm ? "_qknorm" : "");
                         });

}  // namespace
}  // namespace cca
