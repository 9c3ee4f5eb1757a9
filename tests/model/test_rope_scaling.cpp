// Context extension (attention.rope_scaling) on tiny models of every variant: the scaling reaches
// each variant's rotary part (CCA's partial RoPE, MLA's decoupled rope dims), prefill and decode
// agree under it, and a trained model extended 4× evaluates finitely at 4× its length while its
// loss at the original length stays close to the unscaled one.
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <cmath>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/model_test_util.h"
#include "model/transformer.h"
#include "testing/checks.h"

namespace cca {
namespace {

class ScaledModel : public ::testing::TestWithParam<ModelCase> {};

Config with_scaling(Config c, const std::string& kind, double factor, int64_t original) {
  c.attention.rope_scaling = kind;
  c.attention.rope_scaling_factor = factor;
  c.attention.rope_original_max_seq_len = original;
  return c;
}

void copy_weights(TransformerImpl& from, TransformerImpl& to) {
  const at::NoGradGuard no_grad;
  const auto source = from.named_parameters();
  for (auto& item : to.named_parameters()) item.value().copy_(source[item.key()]);
}

// [B, S + 1] tokens of a successor chain (t → 7t + 3 mod 64, a random token one time in five):
// learnable from the previous token alone, so a model's loss says how well it attends.
at::Tensor chain_batch(int64_t batch, int64_t length, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> tokens;
  for (int64_t b = 0; b < batch; ++b) {
    int64_t t = static_cast<int64_t>(rng() % 64);
    for (int64_t s = 0; s <= length; ++s) {
      tokens.push_back(t);
      t = rng() % 5 == 0 ? static_cast<int64_t>(rng() % 64) : (7 * t + 3) % 64;
    }
  }
  return at::tensor(tokens, at::kLong).view({batch, length + 1});
}

double eval_loss(TransformerImpl& model, const at::Tensor& batch) {
  const at::NoGradGuard no_grad;
  const int64_t S = batch.size(1) - 1;
  return model.loss(batch.narrow(1, 0, S), batch.narrow(1, 1, S)).cross_entropy.item<double>();
}

TEST_P(ScaledModel, PrefillChunkedAndDecodeAgreeUnderEveryScaling) {
  for (const std::string kind : {"linear", "ntk", "yarn"}) {
    auto model = make_model(with_scaling(tiny_config(GetParam()), kind, 4.0, 8), at::kDouble);
    const at::Tensor tokens = at::randint(0, 64, {2, 29}, at::kLong);
    const at::Tensor full = model->forward(tokens);
    ModelCache chunked = model->new_cache();
    const at::Tensor a = model->forward(tokens.narrow(1, 0, 13), &chunked);
    const at::Tensor b = model->forward(tokens.narrow(1, 13, 16), &chunked);
    EXPECT_LT(testing::max_abs_diff(at::cat({a, b}, 1), full), 1e-10) << kind;
    ModelCache steps = model->new_cache();
    std::vector<at::Tensor> outs;
    for (int64_t t = 0; t < 29; ++t) outs.push_back(model->forward(tokens.narrow(1, t, 1), &steps));
    EXPECT_LT(testing::max_abs_diff(at::cat(outs, 1), full), 1e-10) << kind;
  }
}

TEST_P(ScaledModel, EveryScalingReachesTheVariantsRotaryPart) {
  const Config plain = tiny_config(GetParam());
  auto reference = make_model(plain, at::kDouble);
  const at::Tensor tokens = at::randint(0, 64, {2, 24}, at::kLong);
  const at::Tensor base = reference->forward(tokens);
  for (const std::string kind : {"linear", "ntk", "yarn"}) {
    auto model = make_model(with_scaling(plain, kind, 4.0, 8), at::kDouble);
    copy_weights(*reference, *model);
    const at::Tensor out = model->forward(tokens);
    // Later tokens see keys at other angles (and, for yarn, a hotter softmax).
    EXPECT_GT(testing::max_abs_diff(out.narrow(1, 8, 16), base.narrow(1, 8, 16)), 1e-6) << kind;
    if (kind != "yarn") {  // the first token attends only to itself: no angle matters
      EXPECT_LT(testing::max_abs_diff(out.narrow(1, 0, 1), base.narrow(1, 0, 1)), 1e-12) << kind;
    }
  }
}

// Trained at 16 tokens, extended 4× (YaRN, NTK-aware, linear): finite and better than chance at 64
// tokens, and at 16 tokens the loss moves by less than 0.02 nats (measured: at most 0.003).
TEST_P(ScaledModel, ExtendedFourTimesEvaluatesFinitelyAndKeepsItsOriginalLengthLoss) {
  const Config plain = tiny_config(GetParam());
  auto model = make_model(plain, at::kFloat);
  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(1e-2).weight_decay(0));
  for (int step = 0; step < 150; ++step) {
    const at::Tensor batch = chain_batch(8, 16, 100 + step);
    optimizer.zero_grad();
    model->loss(batch.narrow(1, 0, 16), batch.narrow(1, 1, 16)).total.backward();
    optimizer.step();
  }
  const at::Tensor short_batch = chain_batch(16, 16, 7), long_batch = chain_batch(16, 64, 8);
  const double trained = eval_loss(*model, short_batch);
  EXPECT_LT(trained, 2.5) << "the tiny model did not learn the chain (ln 64 = 4.16)";
  for (const std::string kind : {"yarn", "ntk", "linear"}) {
    auto extended = make_model(with_scaling(plain, kind, 4.0, 16), at::kFloat);
    copy_weights(*model, *extended);
    const double at_original = eval_loss(*extended, short_batch);
    const double at_four_times = eval_loss(*extended, long_batch);
    EXPECT_TRUE(std::isfinite(at_four_times)) << kind;
    EXPECT_LT(at_four_times, std::log(64.0)) << kind << ": worse than chance at 4× length";
    std::cout << GetParam().kind << " " << kind << ": loss " << trained << " trained, "
              << at_original << " extended at the original length, " << at_four_times << " at 4x\n";
    EXPECT_NEAR(at_original, trained, 0.02) << kind << " at the original length";
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, ScaledModel,
                         ::testing::Values(ModelCase{"mha", false}, ModelCase{"gqa", false},
                                           ModelCase{"mla", false}, ModelCase{"cca", false},
                                           ModelCase{"ccgqa", false}, ModelCase{"swa", false}),
                         case_name);

}  // namespace
}  // namespace cca
