#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include "config/accounting.h"
#include "config/config.h"
#include "model/model_test_util.h"
#include "model/transformer.h"
#include "optim/weight_decay.h"
#include "testing/checks.h"

namespace cca {
namespace {

class TinyModel : public ::testing::TestWithParam<ModelCase> {};

TEST_P(TinyModel, ParameterCountMatchesAccounting) {
  const Config c = tiny_config(GetParam());
  auto model = make_model(c, at::kFloat);
  int64_t total = 0;
  for (const at::Tensor& p : model->parameters()) total += p.numel();
  EXPECT_EQ(total, count_model(c).total_params);
  EXPECT_EQ(static_cast<int64_t>(model->moe_layers().size()), GetParam().moe ? 1 : 0);
}

// What --dry-run says optim.kind muon orthogonalises (the accounting, torch-free) is what the
// optimizer takes from the built model.
TEST_P(TinyModel, MuonTakesTheMatricesTheAccountingCounts) {
  Config c = tiny_config(GetParam());
  c.model.tie_embeddings = false;
  if (GetParam().moe) c.moe.shared_experts = 1;
  auto model = make_model(c, at::kFloat);
  int64_t orthogonalised = 0;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
    if (orthogonalised_by_muon(item.key(), item.value())) orthogonalised += item.value().numel();
  }
  EXPECT_EQ(orthogonalised, count_model(c).hidden_matrix_params);
  EXPECT_GT(orthogonalised, 0);
}

TEST_P(TinyModel, CausalOverTokens) {
  auto model = make_model(tiny_config(GetParam()), at::kDouble);
  const at::Tensor tokens = at::randint(0, 64, {2, 12}, at::kLong);
  const at::Tensor base = model->forward(tokens);
  for (int64_t t : {1, 6, 11}) {
    at::Tensor changed = tokens.clone();
    changed.select(1, t).add_(1).remainder_(64);
    const at::Tensor out = model->forward(changed);
    EXPECT_LT(testing::max_abs_diff(out.narrow(1, 0, t), base.narrow(1, 0, t)), 1e-12) << t;
    EXPECT_GT(testing::max_abs_diff(out.narrow(1, t, 1), base.narrow(1, t, 1)), 1e-9) << t;
  }
}

TEST_P(TinyModel, PrefillChunkedAndDecodeLogitsAgree) {
  auto model = make_model(tiny_config(GetParam()), at::kDouble);
  const at::Tensor tokens = at::randint(0, 64, {2, 11}, at::kLong);
  const at::Tensor full = model->forward(tokens);
  ModelCache chunked = model->new_cache();
  const at::Tensor a = model->forward(tokens.narrow(1, 0, 4), &chunked);
  const at::Tensor b = model->forward(tokens.narrow(1, 4, 7), &chunked);
  EXPECT_LT(testing::max_abs_diff(at::cat({a, b}, 1), full), 1e-10);
  ModelCache steps = model->new_cache();
  std::vector<at::Tensor> outs;
  for (int64_t t = 0; t < 11; ++t) outs.push_back(model->forward(tokens.narrow(1, t, 1), &steps));
  EXPECT_LT(testing::max_abs_diff(at::cat(outs, 1), full), 1e-10);
  EXPECT_EQ(steps.length(), 11);
  EXPECT_GT(steps.bytes(), 0);
}

TEST_P(TinyModel, LossIgnoresMaskedTargetsAndAddsAuxTerms) {
  Config c = tiny_config(GetParam());
  c.model.z_loss = 1e-3;
  auto model = make_model(c, at::kDouble);
  const at::Tensor tokens = at::randint(0, 64, {2, 8}, at::kLong);
  at::Tensor targets = at::randint(0, 64, {2, 8}, at::kLong);
  targets[0][3] = -1;
  targets[1][0] = -1;
  const LossBreakdown loss = model->loss(tokens, targets);
  EXPECT_EQ(loss.valid_tokens, 14);
  const at::Tensor logits = model->forward(tokens).reshape({-1, 64});
  const at::Tensor flat = targets.reshape({-1});
  double ce = 0;
  for (int64_t i = 0; i < 16; ++i) {
    const int64_t t = flat[i].item<int64_t>();
    if (t >= 0) ce -= at::log_softmax(logits[i], 0)[t].item<double>();
  }
  EXPECT_NEAR(loss.cross_entropy.item<double>(), ce / 14, 1e-10);
  double expected = loss.cross_entropy.item<double>() + 1e-3 * loss.lm_z_loss.item<double>();
  if (GetParam().moe) {
    EXPECT_GT(loss.moe_load_balance.item<double>(), 0.0);
    expected += c.moe.aux_loss_coef * loss.moe_load_balance.item<double>() +
                c.moe.z_loss_coef * loss.moe_router_z.item<double>();
  }
  EXPECT_NEAR(loss.total.item<double>(), expected, 1e-10);
}

// Learning, not just running: a fixed batch is memorised within a few hundred AdamW steps.
TEST_P(TinyModel, OverfitsAFixedBatch) {
  auto model = make_model(tiny_config(GetParam()), at::kFloat);
  at::manual_seed(5);
  const at::Tensor data = at::randint(0, 64, {4, 17}, at::kLong);
  const at::Tensor tokens = data.narrow(1, 0, 16), targets = data.narrow(1, 1, 16);
  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(1e-2).weight_decay(0));
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    optimizer.zero_grad();
    const LossBreakdown loss = model->loss(tokens, targets);
    loss.total.backward();
    optimizer.step();
    if (step == 0) first = loss.cross_entropy.item<double>();
    last = loss.cross_entropy.item<double>();
  }
  EXPECT_GT(first, 3.5);  // ≈ ln 64 at init
  EXPECT_LT(last, 0.3) << "cross entropy after 300 steps (first " << first << ")";
}

// Activation checkpointing recomputes each block in backward: the loss, every gradient and the
// MoE load counts must be exactly those of the plain forward (float64, same operations).
TEST_P(TinyModel, ActivationCheckpointingGivesIdenticalGradients) {
  Config c = tiny_config(GetParam());
  c.model.z_loss = 1e-3;
  auto plain = make_model(c, at::kDouble);
  auto recomputed = make_model(c, at::kDouble);
  recomputed->set_activation_checkpointing(true);
  at::manual_seed(11);
  const at::Tensor data = at::randint(0, 64, {2, 13}, at::kLong);
  const at::Tensor tokens = data.narrow(1, 0, 12), targets = data.narrow(1, 1, 12);
  const LossBreakdown a = plain->loss(tokens, targets);
  const LossBreakdown b = recomputed->loss(tokens, targets);
  a.total.backward();
  b.total.backward();
  EXPECT_EQ(a.total.item<double>(), b.total.item<double>());
  const auto pa = plain->named_parameters(), pb = recomputed->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& item : pa) {
    const at::Tensor& ga = item.value().grad();
    const at::Tensor& gb = pb[item.key()].grad();
    ASSERT_TRUE(ga.defined() && gb.defined()) << item.key();
    EXPECT_TRUE(at::equal(ga, gb))
        << item.key() << " differs by " << (ga - gb).abs().max().item<double>();
  }
  const auto la = plain->moe_layers(), lb = recomputed->moe_layers();
  for (size_t i = 0; i < la.size(); ++i) {  // counted once, not again by the recomputation
    EXPECT_TRUE(at::equal(la[i]->pending_expert_counts(), lb[i]->pending_expert_counts()));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Variants, TinyModel,
    ::testing::Values(ModelCase{"mha", false}, ModelCase{"gqa", false}, ModelCase{"mla", false},
                      ModelCase{"cca", false}, ModelCase{"ccgqa", false}, ModelCase{"mha", true},
                      ModelCase{"gqa", true}, ModelCase{"mla", true}, ModelCase{"cca", true},
                      ModelCase{"ccgqa", true}, ModelCase{"swa", false}, ModelCase{"swa", true},
                      ModelCase{"mha_convs", false}, ModelCase{"gqa_convs", true}),
    case_name);

TEST(Transformer, TiedAndUntiedHeads) {
  Config c = tiny_config({"mha", false});
  auto tied = make_model(c, at::kFloat);
  EXPECT_FALSE(tied->lm_head.defined());
  c.model.tie_embeddings = false;
  auto untied = make_model(c, at::kFloat);
  ASSERT_TRUE(untied->lm_head.defined());
  EXPECT_EQ(untied->lm_head.sizes(), untied->embedding.sizes());
}

TEST(Transformer, DepthScaledInitShrinksOutputProjections) {
  Config c = tiny_config({"mha", false});
  c.model.n_layers = 8;
  c.model.init_std = 0.02;
  auto model = make_model(c, at::kFloat);
  const double out_std = model->blocks[0]->ffn->w2.std().item<double>();
  const double in_std = model->blocks[0]->ffn->w1.std().item<double>();
  EXPECT_NEAR(in_std, 0.02, 0.002);
  EXPECT_NEAR(out_std, 0.02 / 4.0, 0.001);  // 1 / sqrt(2 · 8)
}

}  // namespace
}  // namespace cca
