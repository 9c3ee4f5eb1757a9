// The sweep files in configs/ablations must expand and validate, and their variants must be
// matched the way their comments and docs/ablations.md say (spec §6.1: equal total parameters,
// KV cache at 1/4 of MHA; where exact matching is impossible, the non-CCA method keeps the
// advantage). The binary dry-runs every file in test_sweep_process.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>

#include "config/derived.h"
#include "sweep/sweep_spec.h"
#include "util/files.h"

namespace cca::sweep {
namespace {

struct Numbers {
  std::string kind;
  int64_t total = 0;
  int64_t active = 0;
  int64_t kv = 0;  // elements per token per layer
  int64_t n_q = 0;
  int64_t n_kv = 0;
};

std::map<std::string, Numbers> variants(const std::string& file) {
  const SweepSpec spec =
      read_sweep_spec(std::string(CCA_SOURCE_DIR) + "/configs/ablations/" + file, {});
  const std::vector<LoadedConfig> configs = load_all(spec, spec.runs, 1);
  std::map<std::string, Numbers> out;
  for (size_t i = 0; i < spec.runs.size(); ++i) {
    const DerivedValues d = derive_values(configs[i].config, 1);
    out[spec.runs[i].name] = {d.attention.kind,       d.counts.total_params,
                              d.counts.active_params, d.kv_elements_per_token_per_layer,
                              d.attention.n_q_heads,  d.attention.n_kv_heads};
  }
  return out;
}

double relative(int64_t a, int64_t b) {
  return std::fabs(static_cast<double>(a - b)) / static_cast<double>(b);
}

// `tolerance`: how far any variant's total may sit from MHA's.
void expect_matched(const std::map<std::string, Numbers>& v, double tolerance) {
  const Numbers& mha = v.at("mha");
  for (const auto& [name, n] : v) {
    SCOPED_TRACE(name);
    EXPECT_EQ(n.kind, name);
    EXPECT_LT(relative(n.total, mha.total), tolerance);
    if (name == "cca" || name == "ccgqa") {
      EXPECT_LE(n.total, mha.total);  // never CCA's advantage
    }
    if (name == "gqa" || name == "mla" || name == "cca") {
      EXPECT_EQ(n.kv * 4, mha.kv);
    }
  }
}

TEST(ShippedSweeps, SmallAttentionSetIsMatchedAsThePaperMatchesIt) {
  const auto v = variants("attention.yaml");
  ASSERT_EQ(v.size(), 5u);
  expect_matched(v, 0.005);
  EXPECT_EQ(v.at("mha").kv, 2 * 8 * 64);
  EXPECT_EQ(v.at("ccgqa").kv * 4, v.at("mha").kv);
  EXPECT_EQ(v.at("cca").n_q, 2);
  EXPECT_EQ(v.at("ccgqa").n_q, 8);
  EXPECT_EQ(v.at("ccgqa").n_kv, 2);
  EXPECT_NEAR(static_cast<double>(v.at("mha").total), 31.47e6, 0.01e6);  // the comments' figure
}

TEST(ShippedSweeps, DenseOneBillionSetUsesThePapersHeads) {
  const auto v = variants("attention-1b.yaml");
  expect_matched(v, 0.005);
  EXPECT_NEAR(static_cast<double>(v.at("mha").total), 1.07e9, 0.01e9);
  EXPECT_EQ(v.at("cca").n_q, 4);
  EXPECT_EQ(v.at("cca").n_kv, 4);
  EXPECT_EQ(v.at("ccgqa").n_q, 16);
  EXPECT_EQ(v.at("ccgqa").n_kv, 4);
  EXPECT_EQ(v.at("ccgqa").kv * 4, v.at("mha").kv);
}

TEST(ShippedSweeps, MoeSetMatchesTotalsAndHalvesCcgqasCache) {
  const auto v = variants("attention-moe.yaml");
  expect_matched(v, 0.005);
  const Numbers& mha = v.at("mha");
  EXPECT_NEAR(static_cast<double>(mha.total), 1.52e9, 0.01e9);
  EXPECT_NEAR(static_cast<double>(mha.active), 333e6, 2e6);
  EXPECT_EQ(v.at("ccgqa").n_q, 8);
  EXPECT_EQ(v.at("ccgqa").n_kv, 2);
  EXPECT_EQ(v.at("ccgqa").kv * 8, mha.kv);  // half of GQA's and MLA's
  for (const auto& [name, n] : v) EXPECT_LE(n.active, mha.active) << name;
}

// The FP8 comparison changes nothing but the precision (and its scaling) between its arms.
TEST(ShippedSweeps, Fp8SweepDiffersOnlyInPrecision) {
  const SweepSpec spec =
      read_sweep_spec(std::string(CCA_SOURCE_DIR) + "/configs/ablations/fp8-1b.yaml", {});
  const std::vector<LoadedConfig> configs = load_all(spec, spec.runs, 1);
  ASSERT_EQ(configs.size(), 3u);
  std::vector<std::string> arms;
  for (const LoadedConfig& c : configs) {
    arms.push_back(c.config.train.precision + "/" + c.config.train.fp8.scaling);
    EXPECT_EQ(c.config.model.d_model, 2048);
    EXPECT_EQ(c.config.train.steps, configs[0].config.train.steps);
    EXPECT_EQ(c.config.train.seed, configs[0].config.train.seed);
    EXPECT_EQ(c.config.data.train, configs[0].config.data.train);
  }
  EXPECT_EQ(arms, (std::vector<std::string>{"bf16/tensor", "fp8/tensor", "fp8/row"}));
}

TEST(ShippedSweeps, ComponentSetsAreTheTablesRows) {
  for (const char* file :
       {"cca-components.yaml", "cca-components-1b.yaml", "cca-components-moe.yaml"}) {
    SCOPED_TRACE(file);
    const SweepSpec spec =
        read_sweep_spec(std::string(CCA_SOURCE_DIR) + "/configs/ablations/" + file, {});
    const std::vector<LoadedConfig> configs = load_all(spec, spec.runs, 1);
    std::vector<std::string> rows;
    for (const LoadedConfig& c : configs) {
      const VariantSettings& cca = c.config.attention.settings;
      EXPECT_EQ(c.config.attention.kind, "cca");
      rows.push_back(std::to_string(cca.integer("attention.cca.convs")) +
                     (cca.flag("attention.cca.qk_mean") ? "M" : "-") +
                     (cca.flag("attention.cca.value_shift") ? "V" : "-"));
    }
    EXPECT_EQ(rows, (std::vector<std::string>{"0--", "1--", "2--", "2-V", "2MV"}));
  }
}

// Issue 20 item 4: every arm is the base but for what its name says, three seeds, one lr.
TEST(ShippedSweeps, ComponentsSweepChangesOnlyWhatEachArmNames) {
  const SweepSpec spec =
      read_sweep_spec(std::string(CCA_SOURCE_DIR) + "/configs/ablations/components.yaml", {});
  const std::vector<LoadedConfig> configs = load_all(spec, spec.runs, 1);
  ASSERT_EQ(configs.size(), 27u);
  auto yes = [](bool on) { return std::string(on ? "true" : "false"); };
  std::map<std::string, std::set<int64_t>> seeds;  // arm signature -> seeds
  for (const LoadedConfig& loaded : configs) {
    const Config& c = loaded.config;
    const VariantSettings& s = c.attention.settings;
    EXPECT_EQ(c.optim.lr, 1.5e-3);
    EXPECT_EQ(c.model.ffn_hidden, 1536);
    std::string arm = c.attention.kind + " rope " + std::to_string(c.attention.rope_fraction);
    if (c.attention.kind == "cca") {
      EXPECT_EQ(s.integer("attention.cca.q_compression"), 4);
      arm += " convs " + std::to_string(s.integer("attention.cca.convs")) + " mean " +
             yes(s.flag("attention.cca.qk_mean")) + " shift " +
             yes(s.flag("attention.cca.value_shift")) + " temp " +
             s.text("attention.cca.temperature");
    } else {
      arm += " convs " + std::to_string(s.integer("attention.mha.convs")) + " shift " +
             yes(s.flag("attention.mha.value_shift"));
    }
    seeds[arm].insert(c.train.seed);
  }
  const std::set<std::string> expected = {
      "cca rope 0.500000 convs 2 mean true shift true temp exp",
      "cca rope 0.500000 convs 0 mean true shift true temp exp",
      "cca rope 0.500000 convs 2 mean false shift true temp exp",
      "cca rope 0.500000 convs 2 mean true shift false temp exp",
      "cca rope 1.000000 convs 2 mean true shift true temp exp",
      "cca rope 0.500000 convs 2 mean true shift true temp raw",
      "mha rope 0.500000 convs 0 shift false",
      "mha rope 0.500000 convs 2 shift false",
      "mha rope 0.500000 convs 2 shift true"};
  std::set<std::string> got;
  for (const auto& [arm, arm_seeds] : seeds) {
    got.insert(arm);
    EXPECT_EQ(arm_seeds, (std::set<int64_t>{1, 2, 3})) << arm;
  }
  EXPECT_EQ(got, expected);
  EXPECT_TRUE(spec.tune_keys.empty());
}

// AdamW against Muon: GPT-2-small MHA and CCA, every (attention, optimizer) pair over the same
// learning rates and seeds at the same token budget, as the file's comment says.
TEST(ShippedSweeps, OptimizerComparisonGivesEachOptimizerTheSameGridAndBudget) {
  const SweepSpec spec =
      read_sweep_spec(std::string(CCA_SOURCE_DIR) + "/configs/ablations/optimizer.yaml", {});
  const std::vector<LoadedConfig> configs = load_all(spec, spec.runs, 1);
  ASSERT_EQ(configs.size(), 36u);
  std::map<std::string, std::set<std::pair<double, int64_t>>> points;  // pair -> (lr, seed)
  std::set<int64_t> budgets;
  for (const LoadedConfig& loaded : configs) {
    const Config& c = loaded.config;
    EXPECT_EQ(c.model.d_model, 768);
    EXPECT_EQ(c.model.n_layers, 12);
    points[c.attention.kind + "/" + c.optim.kind].insert({c.optim.lr, c.train.seed});
    budgets.insert(derive_values(c, 1).tokens_per_step * c.train.steps);
  }
  ASSERT_EQ(points.size(), 4u);
  for (const auto& [pair, grid] : points) {
    SCOPED_TRACE(pair);
    EXPECT_EQ(grid.size(), 9u);
    EXPECT_EQ(grid, points.at("mha/adamw"));
  }
  EXPECT_EQ(budgets, (std::set<int64_t>{1000 * 64 * 1024}));
}

// One scale step up (issue 20): GPT-2-small's shape at the prose corpus's vocabulary, MHA near
// 124M, CCA with the same SwiGLU width (attention-only), three seeds, one budget of ~20M tokens.
TEST(ShippedSweeps, Attention124mIsAttentionOnlyAtGpt2SmallShape) {
  const SweepSpec spec =
      read_sweep_spec(std::string(CCA_SOURCE_DIR) + "/configs/ablations/attention-124m.yaml", {});
  const std::vector<LoadedConfig> configs = load_all(spec, spec.runs, 1);
  ASSERT_EQ(configs.size(), 6u);
  std::map<std::string, std::set<int64_t>> seeds;
  std::map<std::string, int64_t> params;
  for (const LoadedConfig& loaded : configs) {
    const Config& c = loaded.config;
    const DerivedValues d = derive_values(c, 1);
    SCOPED_TRACE(c.attention.kind);
    EXPECT_EQ(c.model.d_model, 768);
    EXPECT_EQ(c.model.n_layers, 12);
    EXPECT_EQ(c.model.ffn_hidden, 3072);
    EXPECT_EQ(c.model.vocab_size, 16384);
    EXPECT_DOUBLE_EQ(c.optim.lr, 1.0e-3);
    EXPECT_DOUBLE_EQ(c.attention.rope_fraction, 0.5);
    EXPECT_EQ(d.tokens_per_step * c.train.steps, 600 * 32 * 1024);
    params[c.attention.kind] = d.counts.total_params;
    seeds[c.attention.kind].insert(c.train.seed);
  }
  EXPECT_EQ(seeds.size(), 2u);
  EXPECT_EQ(seeds.at("cca"), (std::set<int64_t>{1, 2, 3}));
  EXPECT_EQ(seeds.at("mha"), seeds.at("cca"));
  // The comment's numbers: MHA 125.8M (GPT-2 small's 124M), CCA 105.2M with the same SwiGLU.
  EXPECT_LT(relative(params.at("mha"), 125800000), 0.001);
  EXPECT_LT(relative(params.at("cca"), 105200000), 0.001);
}

}  // namespace
}  // namespace cca::sweep
