// train.precision: fp8 through whole models on the CPU: the products run as the CPU emulation of
// the FP8 GEMMs (the same quantisation the GPU feeds to at::_scaled_mm), under bf16 autocast as
// the trainer sets it up. Every variant's projections must reach the fp8 path, its gradients stay
// close to bf16's, and activation checkpointing must recompute in fp8 too.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "model/model_test_util.h"
#include "model/transformer.h"
#include "ops/fp8_linear.h"
#include "ops/precision.h"

namespace cca {
namespace {

// tiny_config with every hidden width a multiple of 16, as FP8 GEMMs need.
Config fp8_config(const ModelCase& mc) {
  Config c = tiny_config(mc);
  c.model.d_model = 64;
  c.model.ffn_hidden = 64;
  c.model.init_std = 0.05;
  if (mc.kind == "mla") {
    c.attention.settings.set("attention.mla.q_lora_rank", 32);
    c.attention.settings.set("attention.mla.kv_lora_rank", 32);
    c.attention.settings.set("attention.mla.qk_nope_head_dim", 16);
    c.attention.settings.set("attention.mla.qk_rope_head_dim", 16);
    c.attention.settings.set("attention.mla.v_head_dim", 16);
  }
  if (mc.moe) {
    c.moe.expert_hidden = 32;
    c.moe.shared_experts = 1;
  }
  return c;
}

Precision cpu_precision(bool fp8) {
  Precision p;
  p.autocast = true;
  p.compute_dtype = at::kBFloat16;
  p.fp8 = fp8;
  p.fp8_scaling = Fp8Scaling::kTensor;
  return p;
}

// Every parameter's gradient after one forward and backward of a fixed batch. backward runs after
// the precision's scope has closed, as on the GPU (another thread) — the recomputation of a
// checkpointed block must bring its own mode back.
std::map<std::string, at::Tensor> gradients(const Config& c, bool fp8, bool checkpointing) {
  auto model = make_model(c, at::kFloat);
  model->set_activation_checkpointing(checkpointing);
  at::manual_seed(3);
  const at::Tensor data = at::randint(0, 64, {2, 17}, at::kLong);
  LossBreakdown loss;
  {
    const AutocastScope scope(cpu_precision(fp8), at::kCPU);
    loss = model->loss(data.narrow(1, 0, 16), data.narrow(1, 1, 16));
  }
  loss.total.backward();
  std::map<std::string, at::Tensor> out;
  for (const auto& item : model->named_parameters()) {
    if (item.value().grad().defined()) out[item.key()] = item.value().grad().clone();
  }
  return out;
}

double relative_difference(const std::map<std::string, at::Tensor>& a,
                           const std::map<std::string, at::Tensor>& b) {
  double diff = 0, norm = 0;
  for (const auto& [name, g] : a) {
    diff += (g - b.at(name)).square().sum().item<double>();
    norm += b.at(name).square().sum().item<double>();
  }
  return std::sqrt(diff / norm);
}

class Fp8Model : public ::testing::TestWithParam<ModelCase> {};

TEST_P(Fp8Model, GradientsCloseToBf16AndRecomputedInFp8) {
  const Config c = fp8_config(GetParam());
  const auto bf16 = gradients(c, /*fp8=*/false, /*checkpointing=*/false);
  const auto fp8 = gradients(c, /*fp8=*/true, /*checkpointing=*/false);
  ASSERT_EQ(fp8.size(), bf16.size());
  for (const auto& [name, g] : fp8) EXPECT_TRUE(at::isfinite(g).all().item<bool>()) << name;
  const double difference = relative_difference(fp8, bf16);
  EXPECT_LT(difference, 0.15) << "fp8 gradients too far from bf16's";
  EXPECT_GT(difference, 1e-3) << "nothing ran in fp8";
  const std::string summary = fp8_layer_summary();
  EXPECT_NE(summary.find("64→"), std::string::npos) << summary;

  // The recomputed blocks quantise exactly as the plain forward did.
  const auto recomputed = gradients(c, /*fp8=*/true, /*checkpointing=*/true);
  for (const auto& [name, g] : fp8) {
    EXPECT_TRUE(at::equal(g, recomputed.at(name)))
        << name << " differs by " << (g - recomputed.at(name)).abs().max().item<double>();
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, Fp8Model,
                         ::testing::Values(ModelCase{"mha", false}, ModelCase{"gqa", false},
                                           ModelCase{"mla", false}, ModelCase{"cca", false},
                                           ModelCase{"ccgqa", false}, ModelCase{"swa", false},
                                           ModelCase{"mha", true}, ModelCase{"cca", true}),
                         case_name);

}  // namespace
}  // namespace cca
