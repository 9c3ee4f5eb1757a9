#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "config/config.h"
#include "moe/moe.h"
#include "testing/checks.h"
#include "util/error.h"

namespace cca {
namespace {

MoeConfig moe_config(int64_t n, int64_t k, int64_t shared, const std::string& score,
                     bool renormalize, double rate = 0.0) {
  MoeConfig c{};
  c.n_experts = n;
  c.top_k = k;
  c.expert_hidden = 0;
  c.shared_experts = shared;
  c.first_dense_layers = 0;
  c.every = 1;
  c.score = score;
  c.renormalize = renormalize;
  c.aux_loss_coef = 0.01;
  c.z_loss_coef = 0.001;
  c.bias_update_rate = rate;
  return c;
}

// A float64 layer with weights large enough that experts' outputs differ clearly.
std::shared_ptr<MoeImpl> make_layer(int64_t E, const MoeConfig& c, int64_t hidden) {
  auto m = std::make_shared<MoeImpl>(E, c, hidden, 0.5, 0.5);
  m->to(at::kDouble);
  return m;
}

at::Tensor run(MoeImpl& m, const at::Tensor& x) {
  MoeLosses losses;
  return m.forward(x, losses);
}

void set_tensor(at::Tensor& target, const at::Tensor& value) {
  at::NoGradGuard no_grad;
  target.copy_(value);
}

at::Tensor vec_swiglu(const at::Tensor& x, const at::Tensor& w1, const at::Tensor& w3,
                      const at::Tensor& w2) {
  return at::mv(w2, at::silu(at::mv(w1, x)) * at::mv(w3, x));
}

// The layer written one token at a time with scalar arithmetic for the router: scores by hand,
// top-k by sorting the biased scores, gates from the unbiased scores, experts summed.
at::Tensor slow_reference(const MoeImpl& m, const MoeConfig& c, const at::Tensor& x) {
  const int64_t E = x.size(-1), n = c.n_experts, H = m.expert_w1.size(1);
  const at::Tensor tokens = x.reshape({-1, E});
  at::Tensor out = at::zeros_like(tokens);
  for (int64_t t = 0; t < tokens.size(0); ++t) {
    const at::Tensor xt = tokens[t];
    std::vector<double> logit(n), score(n), biased(n);
    for (int64_t e = 0; e < n; ++e) logit[e] = at::dot(m.router_weight[e], xt).item<double>();
    const double top = *std::max_element(logit.begin(), logit.end());
    double denom = 0;
    for (int64_t e = 0; e < n; ++e) denom += std::exp(logit[e] - top);
    for (int64_t e = 0; e < n; ++e) {
      score[e] = c.score == "softmax" ? std::exp(logit[e] - top) / denom
                                      : 1.0 / (1.0 + std::exp(-logit[e]));
      biased[e] = score[e] + m.selection_bias[e].item<double>();
    }
    std::vector<int64_t> ids(n);
    std::iota(ids.begin(), ids.end(), 0);
    std::stable_sort(ids.begin(), ids.end(),
                     [&](int64_t a, int64_t b) { return biased[a] > biased[b]; });
    ids.resize(c.top_k);
    double chosen_sum = 0;
    for (int64_t e : ids) chosen_sum += score[e];
    for (int64_t e : ids) {
      const double gate = c.renormalize ? score[e] / chosen_sum : score[e];
      out[t] += gate * vec_swiglu(xt, m.expert_w1[e], m.expert_w3[e], m.expert_w2[e]);
    }
    for (int64_t s = 0; s < c.shared_experts; ++s) {
      out[t] += vec_swiglu(xt, m.shared_w1.narrow(0, s * H, H), m.shared_w3.narrow(0, s * H, H),
                           m.shared_w2.narrow(1, s * H, H));
    }
  }
  return out.view(x.sizes());
}

struct Variant {
  std::string score;
  bool renormalize;
  int64_t shared;
  int64_t top_k;
};

std::vector<Variant> all_variants() {
  std::vector<Variant> v;
  for (const std::string score : {"softmax", "sigmoid"}) {
    for (bool renormalize : {true, false}) {
      for (int64_t shared : {0, 2}) {
        for (int64_t k : {1, 2}) v.push_back({score, renormalize, shared, k});
      }
    }
  }
  return v;
}

std::string describe(const Variant& v) {
  return v.score + (v.renormalize ? " renorm" : " raw") + " shared " + std::to_string(v.shared) +
         " k " + std::to_string(v.top_k);
}

TEST(Moe, MatchesPerTokenReferenceForEveryVariant) {
  for (const Variant& v : all_variants()) {
    at::manual_seed(1);
    const MoeConfig c = moe_config(4, v.top_k, v.shared, v.score, v.renormalize);
    auto m = make_layer(6, c, 5);
    // A non-zero bias changes which experts are chosen (but must not change the gates).
    set_tensor(m->selection_bias, 0.2 * at::randn({4}, at::kDouble));
    const at::Tensor x = at::randn({2, 7, 6}, at::kDouble);
    const at::Tensor got = run(*m, x);
    EXPECT_LT(testing::max_abs_diff(got, slow_reference(*m, c, x)), 1e-10) << describe(v);
    // Dropless: all 14·k slots were routed.
    const at::Tensor load = m->last_expert_load();
    ASSERT_EQ(load.numel(), 4);
    EXPECT_NEAR(load.sum().item<double>(), 1.0, 1e-6) << describe(v);
    const at::Tensor slots = load.to(at::kDouble) * 14.0 * static_cast<double>(v.top_k);
    EXPECT_LT(testing::max_abs_diff(slots, slots.round()), 1e-4) << describe(v);
  }
}

TEST(Moe, DropsNoTokenWhenOneExpertTakesAll) {
  at::manual_seed(2);
  const MoeConfig c = moe_config(4, 2, 0, "softmax", true);
  auto m = make_layer(6, c, 5);
  set_tensor(m->selection_bias, at::tensor({5.0, 0.0, 0.0, 0.0}, at::kDouble));  // expert 0 always
  const at::Tensor x = at::randn({3, 8, 6}, at::kDouble);
  const at::Tensor got = run(*m, x);
  EXPECT_NEAR(m->last_expert_load()[0].item<double>(), 0.5, 1e-7);  // every token, k = 2
  EXPECT_LT(testing::max_abs_diff(got, slow_reference(*m, c, x)), 1e-10);
  // A capacity-limited layer would zero some tokens' routed output.
  for (int64_t t = 0; t < 24; ++t) {
    EXPECT_GT(got.reshape({-1, 6})[t].abs().max().item<double>(), 1e-6) << "token " << t;
  }
}

// Router W = [[1,0],[0,1],[.5,.5]], tokens [1,0], [0,2], [-1,1]: logits [1,0,.5], [0,2,1],
// [-1,1,0]. Expected values computed from those by hand (double-checked in Python).
struct LossCase {
  std::string score;
  int64_t top_k;
  std::vector<double> load;  // routed-slot fractions
  double load_balance;
};

TEST(Moe, LossesMatchHandComputedValues) {
  const double z_expected = 3.5337423990820098;  // mean of logsumexp² over the three tokens
  for (const LossCase& lc :
       std::vector<LossCase>{{"softmax", 2, {1 / 6.0, 2 / 6.0, 3 / 6.0}, 1.018351881738613},
                             {"softmax", 1, {1 / 3.0, 2 / 3.0, 0.0}, 1.2400509356491325},
                             {"sigmoid", 1, {1 / 3.0, 2 / 3.0, 0.0}, 1.0529580700484102}}) {
    auto m = make_layer(2, moe_config(3, lc.top_k, 0, lc.score, true), 3);
    set_tensor(m->router_weight,
               at::tensor({1.0, 0.0, 0.0, 1.0, 0.5, 0.5}, at::kDouble).view({3, 2}));
    const at::Tensor x = at::tensor({1.0, 0.0, 0.0, 2.0, -1.0, 1.0}, at::kDouble).view({1, 3, 2});
    MoeLosses losses;
    m->forward(x, losses);
    EXPECT_NEAR(losses.load_balance.item<double>(), lc.load_balance, 1e-12) << lc.score;
    EXPECT_NEAR(losses.router_z.item<double>(), z_expected, 1e-12) << lc.score;
    for (int64_t e = 0; e < 3; ++e) {
      EXPECT_NEAR(m->last_expert_load()[e].item<double>(), lc.load[e], 1e-7) << lc.score;
    }
    // Both losses reach the router (and only through P and the logits).
    m->zero_grad();
    (losses.load_balance + losses.router_z).backward();
    ASSERT_TRUE(m->router_weight.grad().defined());
    EXPECT_GT(m->router_weight.grad().abs().max().item<double>(), 1e-3);
  }
}

TEST(Moe, BalancedRoutingGivesUnitLoadBalanceLoss) {
  // Zero router: uniform scores, so P_e = 1/n and n·Σ f_e·P_e = Σ f_e = 1 whatever f is.
  for (const std::string score : {"softmax", "sigmoid"}) {
    auto m = make_layer(4, moe_config(4, 2, 0, score, true), 3);
    set_tensor(m->router_weight, at::zeros({4, 4}, at::kDouble));
    MoeLosses losses;
    m->forward(at::randn({2, 5, 4}, at::kDouble), losses);
    EXPECT_NEAR(losses.load_balance.item<double>(), 1.0, 1e-12) << score;
    EXPECT_NEAR(losses.router_z.item<double>(), std::pow(std::log(4.0), 2), 1e-12) << score;
  }
}

double max_load(MoeImpl& m, const at::Tensor& x) {
  run(m, x);
  return m.last_expert_load().max().item<double>();
}

TEST(Moe, SelectionBiasMovesTowardBalance) {
  at::manual_seed(4);
  const int64_t E = 8, n = 4;
  auto m = make_layer(E, moe_config(n, 1, 0, "softmax", true, 0.01), 6);
  // Feature 0 is always ~3 and only expert 0 reads it: the router prefers expert 0.
  at::Tensor w = 0.1 * at::randn({n, E}, at::kDouble);
  w[0][0] = 1.0;
  set_tensor(m->router_weight, w);
  at::Tensor x = at::randn({4, 16, E}, at::kDouble);
  x.select(2, 0).fill_(3.0);
  const double before = max_load(*m, x);
  ASSERT_GT(before, 0.9);
  ASSERT_GT(m->last_expert_load()[0].item<double>(), 0.9);
  m->update_selection_bias();
  EXPECT_NEAR(m->selection_bias[0].item<double>(), -0.01, 1e-7);  // overloaded: down
  for (int64_t e = 1; e < n; ++e) {
    EXPECT_NEAR(m->selection_bias[e].item<double>(), 0.01, 1e-7) << e;  // under-loaded: up
  }
  // Sign updates on a fixed batch settle into a small limit cycle: average its last steps.
  double recent = 0;
  for (int step = 0; step < 150; ++step) {
    const double load = max_load(*m, x);
    if (step >= 120) recent += load / 30;
    m->update_selection_bias();
  }
  EXPECT_LT(recent, 0.6) << "max load before " << before;
  EXPECT_LT(m->selection_bias[0].item<double>(), m->selection_bias[1].item<double>());
}

TEST(Moe, BiasUpdateIsNoOpWithZeroRateOrInEvalMode) {
  at::manual_seed(5);
  auto frozen = make_layer(6, moe_config(4, 1, 0, "softmax", true, 0.0), 4);
  const at::Tensor x = at::randn({2, 9, 6}, at::kDouble);
  run(*frozen, x);
  frozen->update_selection_bias();
  EXPECT_EQ(frozen->selection_bias.abs().max().item<double>(), 0.0);

  auto eval = make_layer(6, moe_config(4, 1, 0, "softmax", true, 0.1), 4);
  eval->eval();
  run(*eval, x);
  eval->update_selection_bias();
  EXPECT_EQ(eval->selection_bias.abs().max().item<double>(), 0.0);
  eval->train();
  run(*eval, x);
  eval->update_selection_bias();
  EXPECT_GT(eval->selection_bias.abs().max().item<double>(), 0.05);
  // The accumulator was reset: an update with nothing new leaves the bias alone.
  const at::Tensor bias = eval->selection_bias.clone();
  eval->update_selection_bias();
  EXPECT_EQ(testing::max_abs_diff(bias, eval->selection_bias), 0.0);
}

TEST(Moe, BiasDoesNotChangeGatesOfAFixedSelection) {
  // With k = n every expert is chosen whatever the bias, so the output must not move.
  for (const Variant& v : all_variants()) {
    at::manual_seed(6);
    auto m = make_layer(5, moe_config(3, 3, v.shared, v.score, v.renormalize), 4);
    const at::Tensor x = at::randn({2, 4, 5}, at::kDouble);
    const at::Tensor base = run(*m, x);
    set_tensor(m->selection_bias, at::tensor({3.0, -2.0, 0.7}, at::kDouble));
    EXPECT_LT(testing::max_abs_diff(run(*m, x), base), 1e-13) << describe(v);
  }
}

TEST(Moe, SelectionBiasIsACheckpointedBufferNotAParameter) {
  auto m = make_layer(4, moe_config(4, 2, 1, "sigmoid", true, 0.01), 3);
  bool found = false;
  for (const auto& b : m->named_buffers()) {
    if (b.key() == "selection_bias") found = b.value().numel() == 4;
  }
  EXPECT_TRUE(found);
  for (const auto& p : m->named_parameters()) EXPECT_NE(p.key(), "selection_bias");
  auto fresh = std::make_shared<MoeImpl>(4, moe_config(4, 2, 1, "sigmoid", true), 3, 0.1, 0.1);
  EXPECT_EQ(fresh->selection_bias.scalar_type(), at::kFloat);
  EXPECT_EQ(fresh->selection_bias.abs().max().item<double>(), 0.0);
}

TEST(Moe, TokensAreIndependentSoTheLayerIsCausal) {
  for (const std::string score : {"softmax", "sigmoid"}) {
    at::manual_seed(8);
    auto m = make_layer(6, moe_config(4, 2, 1, score, true), 5);
    testing::expect_causal([&](const at::Tensor& x) { return run(*m, x); }, 2, 9, 6);
  }
}

TEST(Moe, GradientsMatchFiniteDifferences) {
  for (const Variant& v : {Variant{"softmax", true, 1, 2}, Variant{"sigmoid", true, 1, 2},
                           Variant{"softmax", false, 0, 1}, Variant{"sigmoid", false, 2, 2}}) {
    at::manual_seed(9);
    auto m = make_layer(4, moe_config(3, v.top_k, v.shared, v.score, v.renormalize), 3);
    const at::Tensor x = at::randn({1, 4, 4}, at::kDouble);
    // The output and both router losses, so the losses' router gradients are checked too.
    auto f = [&](const at::Tensor& in) {
      MoeLosses l;
      const at::Tensor out = m->forward(in, l);
      return at::cat({out.reshape({-1}), l.load_balance.reshape({1}), l.router_z.reshape({1})});
    };
    testing::expect_gradients_match(*m, f, x, 8, 1e-6, 1e-6);
  }
}

TEST(Moe, ParameterCountMatchesAccountingFormula) {
  struct Shape {
    int64_t E, n, shared, hidden;
  };
  for (const Shape s : {Shape{8, 4, 0, 6}, Shape{6, 3, 2, 5}, Shape{16, 8, 1, 12}}) {
    MoeImpl m(s.E, moe_config(s.n, 2, s.shared, "softmax", true), s.hidden, 0.02, 0.01);
    int64_t total = 0;
    std::vector<std::string> names;
    for (const auto& p : m.named_parameters()) {
      total += p.value().numel();
      names.push_back(p.key());
    }
    EXPECT_EQ(total, s.E * s.n + (s.n + s.shared) * 3 * s.E * s.hidden) << s.n << " " << s.shared;
    EXPECT_EQ(names.size(), s.shared > 0 ? 7u : 4u);
    EXPECT_EQ(m.router_weight.sizes(), (std::vector<int64_t>{s.n, s.E}));
    EXPECT_EQ(m.expert_w1.sizes(), (std::vector<int64_t>{s.n, s.hidden, s.E}));
    EXPECT_EQ(m.expert_w2.sizes(), (std::vector<int64_t>{s.n, s.E, s.hidden}));
  }
}

TEST(Moe, InitUsesTheGivenStandardDeviations) {
  at::manual_seed(10);
  MoeImpl m(64, moe_config(8, 2, 1, "softmax", true), 96, 0.05, 0.01);
  EXPECT_NEAR(m.router_weight.std().item<double>(), 0.05, 0.005);
  EXPECT_NEAR(m.expert_w1.std().item<double>(), 0.05, 0.002);
  EXPECT_NEAR(m.expert_w3.std().item<double>(), 0.05, 0.002);
  EXPECT_NEAR(m.expert_w2.std().item<double>(), 0.01, 0.0005);
  EXPECT_NEAR(m.shared_w2.std().item<double>(), 0.01, 0.0005);
  EXPECT_EQ(m.router_weight.scalar_type(), at::kFloat);
}

TEST(Moe, GroupedKernelMatchesLoop) {
  at::manual_seed(11);
  auto m = std::make_shared<MoeImpl>(16, moe_config(6, 2, 1, "sigmoid", true), 8, 0.3, 0.3);
  // Skew the router so some experts get no tokens: empty groups must work too.
  set_tensor(m->selection_bias, at::tensor({1.0f, 1.0f, 0.0f, 0.0f, -5.0f, -5.0f}));
  const at::Tensor x = at::randn({2, 10, 16});
  std::vector<at::Tensor> outs, grads;
  for (MoeExpertKernel kernel : {MoeExpertKernel::kLoop, MoeExpertKernel::kGrouped}) {
    m->set_expert_kernel(kernel);
    m->zero_grad();
    const at::Tensor out = run(*m, x);
    (out * out).sum().backward();
    outs.push_back(out.detach());
    grads.push_back(at::cat({m->expert_w1.grad().reshape({-1}), m->expert_w2.grad().reshape({-1}),
                             m->router_weight.grad().reshape({-1})}));
  }
  EXPECT_LT(m->last_expert_load()[4].item<double>(), 1e-9);
  EXPECT_LT(testing::max_abs_diff(outs[0], outs[1]), 1e-5);
  EXPECT_LT(testing::max_abs_diff(grads[0], grads[1]), 1e-4);
}

TEST(Moe, RouterRunsInFp32AndOutputKeepsInputDtype) {
  at::manual_seed(12);
  auto m = std::make_shared<MoeImpl>(16, moe_config(4, 2, 1, "softmax", true), 8, 0.3, 0.3);
  const at::Tensor x = at::randn({2, 5, 16});
  MoeLosses l32;
  const at::Tensor y32 = m->forward(x, l32);
  EXPECT_EQ(y32.scalar_type(), at::kFloat);
  const at::Tensor router = m->router_weight.detach().clone();
  m->to(at::kBFloat16);
  EXPECT_EQ(m->expert_w1.scalar_type(), at::kBFloat16);
  EXPECT_EQ(m->router_weight.scalar_type(), at::kFloat);  // the cast leaves the router alone
  EXPECT_TRUE(at::equal(m->router_weight, router)) << "router weights were rounded to bf16";
  EXPECT_EQ(m->selection_bias.scalar_type(), at::kFloat);
  MoeLosses l16;
  const at::Tensor y16 = m->forward(x.to(at::kBFloat16), l16);
  EXPECT_EQ(y16.scalar_type(), at::kBFloat16);
  EXPECT_EQ(l16.router_z.scalar_type(), at::kFloat);
  EXPECT_EQ(l16.load_balance.scalar_type(), at::kFloat);
  // bf16 weights round the result; same routing keeps it close to fp32.
  EXPECT_LT(testing::max_abs_diff(y16.to(at::kFloat), y32), 0.05 * y32.abs().max().item<double>());
  EXPECT_NEAR(l16.router_z.item<double>(), l32.router_z.item<double>(), 0.02);
}

TEST(Moe, RejectsBadConfigAndInput) {
  EXPECT_THROW(MoeImpl(8, moe_config(2, 3, 0, "softmax", true), 4, 0.02, 0.02), Error);
  EXPECT_THROW(MoeImpl(8, moe_config(0, 1, 0, "softmax", true), 4, 0.02, 0.02), Error);
  EXPECT_THROW(MoeImpl(8, moe_config(4, 2, 0, "relu", true), 4, 0.02, 0.02), Error);
  MoeImpl m(8, moe_config(4, 2, 0, "softmax", true), 4, 0.02, 0.02);
  EXPECT_THROW(run(m, at::randn({2, 3, 7})), c10::Error);
}

}  // namespace
}  // namespace cca
