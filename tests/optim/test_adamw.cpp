#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "config/config.h"
#include "optim/adamw.h"
#include "optim/weight_decay.h"
#include "util/error.h"

namespace cca {
namespace {

OptimConfig optim_config(double weight_decay = 0.1, double clip = 0.0) {
  OptimConfig c = default_config().optim;
  c.beta1 = 0.9;
  c.beta2 = 0.95;
  c.eps = 1e-8;
  c.weight_decay = weight_decay;
  c.grad_clip = clip;
  c.decay_norms_and_biases = false;
  c.decay_embeddings = false;
  return c;
}

at::Tensor parameter(std::vector<float> values) {
  return at::tensor(values, at::kFloat)
      .reshape({2, static_cast<int64_t>(values.size()) / 2})
      .set_requires_grad(true);
}

// Plain-C++ AdamW (decoupled decay, bias correction) for one scalar through `grads`.
double reference_adamw(double w, const std::vector<double>& grads, double lr,
                       const OptimConfig& c) {
  double m = 0, v = 0;
  for (size_t t = 1; t <= grads.size(); ++t) {
    const double g = grads[t - 1];
    w *= 1 - lr * c.weight_decay;
    m = c.beta1 * m + (1 - c.beta1) * g;
    v = c.beta2 * v + (1 - c.beta2) * g * g;
    const double m_hat = m / (1 - std::pow(c.beta1, t)), v_hat = v / (1 - std::pow(c.beta2, t));
    w -= lr * m_hat / (std::sqrt(v_hat) + c.eps);
  }
  return w;
}

TEST(AdamW, MatchesTheTextbookUpdateOverSeveralSteps) {
  const OptimConfig c = optim_config();
  at::Tensor w = parameter({0.5f, -1.0f, 2.0f, 0.25f});
  AdamW optimizer({{"blocks.0.ffn.w1", w}}, c);
  const std::vector<std::vector<double>> grads = {
      {0.1, -0.2, 0.3, 0.0}, {0.2, 0.1, -0.3, 1.0}, {-0.05, 0.4, 0.1, -1.0}};
  const at::Tensor loss = at::zeros({});
  for (const auto& g : grads) {
    w.mutable_grad().copy_(at::tensor(std::vector<float>(g.begin(), g.end())).reshape({2, 2}));
    optimizer.step(1e-2, loss);
  }
  const std::vector<float> initial = {0.5f, -1.0f, 2.0f, 0.25f};
  for (int i = 0; i < 4; ++i) {
    std::vector<double> series;
    for (const auto& g : grads) series.push_back(static_cast<float>(g[i]));
    EXPECT_NEAR(w.flatten()[i].item<double>(), reference_adamw(initial[i], series, 1e-2, c), 2e-6)
        << "element " << i;
  }
}

// Released gradients (a single process) and zeroed ones (data parallelism keeps views of them)
// give bit-identical steps, over micro-batches, with a parameter that never gets a gradient.
TEST(AdamW, ReleasedGradientsStepExactlyLikeZeroedOnes) {
  const OptimConfig c = optim_config(0.1, 1.0);
  std::vector<at::Tensor> used, unused;
  std::vector<std::unique_ptr<AdamW>> optimizers;
  for (int i = 0; i < 2; ++i) {
    used.push_back(parameter({0.5f, -1.0f, 2.0f, 0.25f}));
    unused.push_back(parameter({1.0f, 2.0f, 3.0f, 4.0f}));
    optimizers.push_back(std::make_unique<AdamW>(
        std::vector<NamedTensor>{{"blocks.0.ffn.w1", used[i]}, {"blocks.0.ffn.w2", unused[i]}}, c));
  }
  at::manual_seed(5);
  for (int step = 0; step < 3; ++step) {
    const at::Tensor x1 = at::randn({2, 2}), x2 = at::randn({2, 2});
    for (int i = 0; i < 2; ++i) {
      for (const at::Tensor& x : {x1, x2}) (used[i] * x).square().sum().backward();
      optimizers[i]->step(1e-2, at::zeros({}));
      optimizers[i]->zero_grad(/*release=*/i == 0);
    }
    EXPECT_FALSE(used[0].grad().defined());
    EXPECT_TRUE(at::equal(used[1].grad(), at::zeros_like(used[1])));
    EXPECT_TRUE(at::equal(used[0], used[1])) << "step " << step;
    EXPECT_TRUE(at::equal(unused[0], unused[1])) << "step " << step;
  }
  EXPECT_FALSE(at::equal(unused[0], parameter({1.0f, 2.0f, 3.0f, 4.0f})));  // decayed all along
}

TEST(AdamW, NormsBiasesTemperaturesAndEmbeddingsAreNotDecayedByDefault) {
  const OptimConfig c = optim_config();
  const at::Tensor matrix = at::zeros({4, 4}), vector = at::zeros({4});
  EXPECT_TRUE(takes_weight_decay("blocks.0.attention.linear_q.weight", matrix, c));
  EXPECT_TRUE(takes_weight_decay("blocks.0.attention.conv_qk.1.weight", at::zeros({4, 2, 3}), c));
  EXPECT_FALSE(takes_weight_decay("blocks.0.ffn_norm.weight", vector, c));
  EXPECT_FALSE(takes_weight_decay("blocks.0.attention.temp", vector, c));
  EXPECT_FALSE(takes_weight_decay("blocks.0.attention.conv_qk.0.bias", vector, c));
  EXPECT_FALSE(takes_weight_decay("embedding", matrix, c));
  EXPECT_FALSE(takes_weight_decay("lm_head", matrix, c));
  OptimConfig all = c;
  all.decay_norms_and_biases = true;
  all.decay_embeddings = true;
  EXPECT_TRUE(takes_weight_decay("blocks.0.ffn_norm.weight", vector, all));
  EXPECT_TRUE(takes_weight_decay("embedding", matrix, all));
}

TEST(AdamW, UndecayedGroupIgnoresWeightDecay) {
  const OptimConfig c = optim_config(/*weight_decay=*/0.5);
  at::Tensor norm = at::ones({4}).set_requires_grad(true);
  AdamW optimizer({{"final_norm.weight", norm}}, c);
  EXPECT_EQ(optimizer.undecayed_count(), 1);
  norm.mutable_grad().zero_();  // zero gradient: only decay could move it
  optimizer.step(1e-1, at::zeros({}));
  EXPECT_TRUE(at::equal(norm, at::ones({4})));
}

TEST(AdamW, NonFiniteLossOrGradientLeavesEverythingUntouched) {
  const OptimConfig c = optim_config();
  at::Tensor w = parameter({0.5f, -1.0f, 2.0f, 0.25f});
  AdamW optimizer({{"w", w}}, c);
  w.mutable_grad().fill_(0.1);
  optimizer.step(1e-2, at::zeros({}));
  const at::Tensor after_one = w.detach().clone();
  std::vector<at::Tensor> state_after_one;
  for (const auto& s : optimizer.state()) state_after_one.push_back(s.tensor.clone());

  w.mutable_grad().fill_(0.1);
  StepReport report = optimizer.step(1e-2, at::full({}, std::numeric_limits<float>::quiet_NaN()));
  EXPECT_EQ(report.skipped.item<float>(), 1.0f);
  w.mutable_grad().fill_(0.1);
  w.mutable_grad()[0][0] = std::numeric_limits<float>::infinity();
  report = optimizer.step(1e-2, at::zeros({}));
  EXPECT_EQ(report.skipped.item<float>(), 1.0f);
  EXPECT_FALSE(std::isfinite(report.grad_norm.item<float>()));
  w.mutable_grad().fill_(0.1);
  report = optimizer.step(1e-2, at::zeros({}), /*frozen=*/at::ones({}));
  EXPECT_EQ(report.skipped.item<float>(), 1.0f);

  EXPECT_TRUE(at::equal(w.detach(), after_one));
  const auto state = optimizer.state();
  for (size_t i = 0; i < state.size(); ++i) {
    EXPECT_TRUE(at::equal(state[i].tensor, state_after_one[i])) << state[i].name;
  }
}

TEST(AdamW, ClipsToTheGlobalNormAndReportsTheNormBeforeClipping) {
  const OptimConfig c = optim_config(/*weight_decay=*/0.0, /*clip=*/1.0);
  at::Tensor a = parameter({0, 0, 0, 0}), b = parameter({0, 0, 0, 0});
  AdamW optimizer({{"a", a}, {"b", b}}, c);
  a.mutable_grad().fill_(3.0);  // |g| over both = sqrt(8 * 9) = 8.485
  b.mutable_grad().fill_(-3.0);
  const StepReport report = optimizer.step(1e-3, at::zeros({}));
  EXPECT_NEAR(report.grad_norm.item<double>(), std::sqrt(72.0), 1e-5);
  EXPECT_NEAR(a.grad().norm().item<double>() * std::sqrt(2.0), 1.0, 1e-5);
  EXPECT_EQ(report.skipped.item<float>(), 0.0f);
}

TEST(AdamW, StateRoundTripsAndRejectsWrongShapes) {
  const OptimConfig c = optim_config();
  at::Tensor w = parameter({1, 2, 3, 4});
  AdamW first({{"w", w}}, c);
  w.mutable_grad().fill_(0.3);
  first.step(1e-2, at::zeros({}));
  std::map<std::string, at::Tensor> saved;
  for (const auto& s : first.state()) saved[s.name] = s.tensor.clone();
  EXPECT_EQ(saved.count("exp_avg/w") + saved.count("exp_avg_sq/w") + saved.count("step/w"), 3u);
  EXPECT_EQ(saved["step/w"].item<float>(), 1.0f);

  at::Tensor w2 = parameter({1, 2, 3, 4});
  AdamW second({{"w", w2}}, c);
  second.load_state(saved, "optimizer.safetensors");
  for (const auto& s : second.state()) EXPECT_TRUE(at::equal(s.tensor, saved[s.name])) << s.name;

  saved["exp_avg/w"] = at::zeros({3});
  try {
    second.load_state(saved, "optimizer.safetensors");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exp_avg/w' has shape [3], expected [2, 2]"),
              std::string::npos)
        << e.what();
  }
  saved.erase("exp_avg/w");
  EXPECT_THROW(second.load_state(saved, "optimizer.safetensors"), Error);
}

TEST(AdamW, RejectsNonFloat32MasterWeights) {
  at::Tensor half = at::zeros({2, 2}, at::kBFloat16).set_requires_grad(true);
  EXPECT_THROW(AdamW({{"w", half}}, optim_config()), Error);
}

}  // namespace
}  // namespace cca
