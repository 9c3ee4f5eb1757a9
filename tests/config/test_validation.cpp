// Cross-field rules (config/validate.cpp) and the geometry a config resolves to
// (config/geometry.h).
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "config/accounting.h"
#include "config/attention_variant.h"
#include "config/config.h"
#include "config/derived.h"
#include "config/geometry.h"
#include "config/loader.h"
#include "config/validate.h"
#include "config/variants/cca.h"
#include "config/variants/mla.h"
#include "config_test_util.h"
#include "util/error.h"

namespace cca {
namespace {

using testutil::contains;
using testutil::load_text_error;

LoadedConfig load_ok(const std::string& yaml, int world_size = 1) {
  LoadOptions options;
  options.world_size = world_size;
  return load_config_text(yaml, "rule.yaml", options);
}

// Loads `yaml`, which must break exactly one rule, and returns that diagnostic.
Diagnostic broken(const std::string& yaml, int world_size = 1) {
  LoadOptions options;
  options.world_size = world_size;
  const ConfigError e =
      testutil::expect_config_error([&] { load_config_text(yaml, "rule.yaml", options); });
  EXPECT_EQ(e.diagnostics().size(), 1u) << e.what();
  return e.diagnostics().empty() ? Diagnostic{} : e.diagnostics().front();
}

// Asserts that `yaml` loads without any diagnostic, warnings included.
void satisfied(const std::string& yaml, int world_size = 1) {
  try {
    const LoadedConfig loaded = load_ok(yaml, world_size);
    for (const Diagnostic& w : loaded.warnings) {
      ADD_FAILURE() << "expected no warning for:\n" << yaml << "\ngot: " << w.message;
    }
  } catch (const ConfigError& e) {
    ADD_FAILURE() << "expected a valid config:\n" << yaml << "\ngot: " << e.what();
  }
}

// Loads `yaml`, which must be valid and draw exactly one warning, and returns that warning.
Diagnostic warned(const std::string& yaml) {
  try {
    const LoadedConfig loaded = load_ok(yaml);
    EXPECT_EQ(loaded.warnings.size(), 1u) << yaml;
    return loaded.warnings.empty() ? Diagnostic{} : loaded.warnings.front();
  } catch (const ConfigError& e) {
    ADD_FAILURE() << "expected a valid config:\n" << yaml << "\ngot: " << e.what();
    return Diagnostic{};
  }
}

// ---------------------------------------------------------------------------------------------
// Heads

TEST(ValidateHeads, WidthMustDivideByHeads) {
  const Diagnostic d = broken("model:\n  d_model: 768\nattention:\n  n_heads: 10\n");
  EXPECT_EQ(
      d.message,
      "model.d_model = 768 is not divisible by attention.n_heads = 10; choose n_heads from "
      "1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256 or set attention.head_dim");
  EXPECT_EQ(d.origin.describe(), "rule.yaml:4:3");  // at n_heads, the first key it names
  // Only d_model set: reported there.
  const Diagnostic at_width = broken("model:\n  d_model: 1010\n");
  EXPECT_TRUE(contains(at_width.message,
                       "model.d_model = 1010 is not divisible by "
                       "attention.n_heads = 12; choose n_heads from 1, 2, 5, "
                       "10, 101, 202, 505, 1010 or set attention.head_dim"))
      << at_width.message;
  EXPECT_EQ(at_width.origin.describe(), "rule.yaml:2:3");

  satisfied("model:\n  d_model: 768\nattention:\n  n_heads: 8\n");
  satisfied("model:\n  d_model: 768\nattention:\n  n_heads: 10\n  head_dim: 64\n");
  satisfied("model:\n  d_model: 768\nattention:\n  kind: mla\n  n_heads: 10\n");
}

// ---------------------------------------------------------------------------------------------
// RoPE scaling

TEST(ValidateRopeScaling, KeysGoTogetherAndYarnNeedsTheOriginalLength) {
  const Diagnostic stray = broken("attention:\n  rope_scaling_factor: 4\n");
  EXPECT_EQ(stray.message,
            "attention.rope_scaling_factor = 4 / rope_original_max_seq_len = 0 have no effect "
            "with attention.rope_scaling: none; set rope_scaling to linear, ntk or yarn, or "
            "remove them");
  EXPECT_EQ(stray.origin.describe(), "rule.yaml:2:3");
  const Diagnostic flat = broken("attention:\n  rope_scaling: linear\n");
  EXPECT_TRUE(contains(flat.message,
                       "attention.rope_scaling: linear needs "
                       "attention.rope_scaling_factor above 1"))
      << flat.message;
  const Diagnostic yarn = broken("attention:\n  rope_scaling: yarn\n  rope_scaling_factor: 4\n");
  EXPECT_TRUE(contains(yarn.message, "yarn needs attention.rope_original_max_seq_len"))
      << yarn.message;
  satisfied("attention:\n  rope_scaling: ntk\n  rope_scaling_factor: 4\n");
  satisfied(
      "attention:\n  rope_scaling: yarn\n  rope_scaling_factor: 4\n"
      "  rope_original_max_seq_len: 256\ntrain:\n  seq_len: 1024\n");
  satisfied("attention:\n  kind: mla\n  rope_scaling: linear\n  rope_scaling_factor: 2\n");
}

TEST(ValidateRopeScaling, SequencesPastTheScaledLengthAreWarned) {
  const Diagnostic d = warned(
      "attention:\n  rope_scaling: yarn\n  rope_scaling_factor: 4\n"
      "  rope_original_max_seq_len: 256\ntrain:\n  seq_len: 2048\n");
  EXPECT_EQ(d.message,
            "sequences of 2048 tokens exceed what attention.rope_scaling_factor 4 × "
            "rope_original_max_seq_len 256 = 1024 covers; positions past it extrapolate");
}

TEST(ValidateHeads, MhaTakesNoSeparateKvHeads) {
  const Diagnostic d = broken("attention:\n  kind: mha\n  n_kv_heads: 4\n");
  EXPECT_EQ(d.message,
            "attention.n_kv_heads = 4 with kind mha, which has one KV head per query head (12); "
            "use kind: gqa, or n_kv_heads: 0");
  EXPECT_EQ(d.origin.line, 3);
  satisfied("attention:\n  kind: mha\n  n_kv_heads: 0\n");
  satisfied("attention:\n  kind: mha\n  n_kv_heads: 12\n");
}

TEST(ValidateHeads, GqaNeedsKvHeads) {
  const Diagnostic d = broken("attention:\n  kind: gqa\n");
  EXPECT_EQ(d.message,
            "kind gqa needs attention.n_kv_heads; valid values divide attention.n_heads = 12: "
            "1, 2, 3, 4, 6, 12");
  EXPECT_EQ(d.origin.describe(), "rule.yaml:2:3");
  satisfied("attention:\n  kind: gqa\n  n_kv_heads: 4\n");
}

TEST(ValidateHeads, GqaKvHeadsMustDivideHeads) {
  const Diagnostic d = broken("attention:\n  kind: gqa\n  n_kv_heads: 5\n");
  EXPECT_EQ(d.message,
            "attention.n_kv_heads = 5 does not divide attention.n_heads = 12; valid values: "
            "1, 2, 3, 4, 6, 12");
  EXPECT_EQ(d.origin.line, 3);
  satisfied("attention:\n  kind: gqa\n  n_kv_heads: 1\n");   // MQA
  satisfied("attention:\n  kind: gqa\n  n_kv_heads: 12\n");  // = MHA
}

// ---------------------------------------------------------------------------------------------
// RoPE

TEST(ValidateRope, RotaryDimsMustBeAnEvenWholeNumber) {
  const Diagnostic fraction = broken("attention:\n  rope_fraction: 0.3\n");
  EXPECT_TRUE(contains(fraction.message,
                       "attention.rope_fraction = 0.3 gives 19.2 rotary dims of head_dim 64; "
                       "rotate-half RoPE needs an even whole number"))
      << fraction.message;
  EXPECT_EQ(fraction.origin.line, 2);

  const Diagnostic odd = broken("attention:\n  head_dim: 10\n  rope_fraction: 0.5\n");
  EXPECT_TRUE(contains(odd.message, "gives 5 rotary dims of head_dim 10")) << odd.message;

  satisfied("attention:\n  rope_fraction: 0.5\n");                  // 32 of 64
  satisfied("attention:\n  rope_fraction: 0.25\n");                 // 16 of 64
  satisfied("attention:\n  rope_fraction: 0.0\n");                  // no RoPE at all
  satisfied("attention:\n  head_dim: 10\n  rope_fraction: 0.4\n");  // 4 of 10
  satisfied("attention:\n  kind: mla\n  rope_fraction: 0.3\n");     // mla has its own rope dims
}

// ---------------------------------------------------------------------------------------------
// CCA / CCGQA

TEST(ValidateCca, HeadDimMustBeEven) {
  const Diagnostic d = broken(
      "attention:\n  kind: cca\n  head_dim: 3\n  rope_fraction: 0.0\n  cca:\n"
      "    q_compression: 4\n");
  EXPECT_EQ(d.message,
            "cca needs an even head_dim (value shift and RoPE split heads in halves); got 3");
  EXPECT_EQ(d.origin.line, 3);
  EXPECT_TRUE(
      contains(broken("attention:\n  kind: ccgqa\n  n_heads: 256\n  rope_fraction: 0.0\n").message,
               "ccgqa needs an even head_dim"));
  satisfied("attention:\n  kind: cca\n  head_dim: 4\n  rope_fraction: 0.0\n");
}

TEST(ValidateCca, PlainCcaCompressesQAndKvAlike) {
  const Diagnostic d =
      broken("attention:\n  kind: cca\n  cca:\n    q_compression: 4\n    kv_compression: 8\n");
  EXPECT_EQ(d.message,
            "kind cca compresses q and kv alike, but attention.cca.kv_compression = 8 differs from "
            "q_compression = 4; use kind: ccgqa for different factors");
  EXPECT_EQ(d.origin.line, 5);
  satisfied("attention:\n  kind: cca\n  cca:\n    q_compression: 4\n    kv_compression: 4\n");
  satisfied("attention:\n  kind: cca\n  cca:\n    q_compression: 4\n    kv_compression: 0\n");
  // The cca keys are ignored by the other kinds.
  satisfied("attention:\n  kind: mha\n  cca:\n    q_compression: 5\n    kv_compression: 7\n");
}

TEST(ValidateCca, QCompressionMustSplitTheWidth) {
  const Diagnostic d = broken("attention:\n  kind: cca\n  cca:\n    q_compression: 5\n");
  EXPECT_EQ(d.message,
            "attention.cca.q_compression = 5 does not split model.d_model = 768 into whole heads "
            "of head_dim 64; valid compression factors: 1, 2, 3, 4, 6, 12");
  EXPECT_EQ(d.origin.line, 4);
  satisfied("attention:\n  kind: cca\n  cca:\n    q_compression: 6\n");
  satisfied("attention:\n  kind: cca\n  cca:\n    q_compression: 12\n");
}

TEST(ValidateCca, KvCompressionMustBeAMultipleOfQCompression) {
  const Diagnostic not_multiple =
      broken("attention:\n  kind: ccgqa\n  cca:\n    q_compression: 2\n    kv_compression: 3\n");
  EXPECT_EQ(not_multiple.message,
            "attention.cca.kv_compression = 3 must be a multiple of q_compression = 2 (each kv "
            "head serves a whole group of query heads)");
  EXPECT_EQ(not_multiple.origin.line, 5);
  const Diagnostic smaller =
      broken("attention:\n  kind: ccgqa\n  cca:\n    q_compression: 4\n    kv_compression: 2\n");
  EXPECT_TRUE(
      contains(smaller.message, "kv_compression = 2 must be a multiple of q_compression = 4"));
  satisfied("attention:\n  kind: ccgqa\n  cca:\n    q_compression: 2\n    kv_compression: 6\n");
  satisfied("attention:\n  kind: ccgqa\n  cca:\n    q_compression: 2\n    kv_compression: 2\n");
}

TEST(ValidateCca, KvCompressionMustSplitTheWidth) {
  const Diagnostic d =
      broken("attention:\n  kind: ccgqa\n  cca:\n    q_compression: 2\n    kv_compression: 8\n");
  EXPECT_EQ(d.message,
            "attention.cca.kv_compression = 8 does not split model.d_model = 768 into whole heads "
            "of head_dim 64; valid compression factors: 1, 2, 3, 4, 6, 12");
  EXPECT_EQ(d.origin.line, 5);
  satisfied("attention:\n  kind: ccgqa\n  cca:\n    q_compression: 2\n    kv_compression: 4\n");
  satisfied(
      "model:\n  d_model: 2048\nattention:\n  kind: ccgqa\n  n_heads: 16\n  cca:\n"
      "    q_compression: 2\n    kv_compression: 8\n");
}

// ---------------------------------------------------------------------------------------------
// MLA, MoE

// attention.mha.* (CCA's convs and value shift on plain heads) belong to mha and gqa; every other
// kind refuses them, naming the key and the kinds that take it.
TEST(ValidateHeadConvs, OnlyMhaAndGqaTakeThem) {
  satisfied("attention:\n  kind: mha\n  mha:\n    convs: 2\n    value_shift: true\n");
  satisfied(
      "attention:\n  kind: gqa\n  n_kv_heads: 2\n  mha:\n    convs: 1\n    conv_kernel_0: 4\n");
  for (const char* kind : {"cca", "ccgqa", "mla", "swa"}) {
    const Diagnostic d =
        broken(std::string("attention:\n  kind: ") + kind + "\n  mha:\n    convs: 2\n");
    EXPECT_EQ(d.message, std::string("attention.mha.convs = 2 applies to kind mha and gqa only, "
                                     "not ") +
                             kind +
                             " (cca and ccgqa have attention.cca.convs); set "
                             "attention.mha.convs: 0");
    EXPECT_EQ(d.origin.line, 4) << kind;
    EXPECT_TRUE(contains(
        broken(std::string("attention:\n  kind: ") + kind + "\n  mha: {value_shift: true}\n")
            .message,
        "attention.mha.value_shift applies to kind mha and gqa only"))
        << kind;
  }
  // Left at their defaults they are no one's concern.
  satisfied("attention:\n  kind: cca\n  mha:\n    convs: 0\n    value_shift: false\n");
}

TEST(ValidateHeadConvs, KeysAreRangeChecked) {
  const ConfigError e = testutil::expect_config_error(
      [] { load_config_text("attention:\n  mha:\n    convs: 3\n", "rule.yaml", LoadOptions{}); });
  EXPECT_TRUE(contains(e.what(), "attention.mha.convs")) << e.what();
  const ConfigError k = testutil::expect_config_error([] {
    load_config_text("attention:\n  mha:\n    conv_kernel_1: 5\n", "rule.yaml", LoadOptions{});
  });
  EXPECT_TRUE(contains(k.what(), "attention.mha.conv_kernel_1")) << k.what();
}

TEST(ValidateHeadConvs, ValueShiftNeedsAnEvenValueWidth) {
  const Diagnostic d = broken(
      "model:\n  d_model: 9\nattention:\n  kind: gqa\n  n_heads: 3\n  n_kv_heads: 1\n"
      "  rope_fraction: 0.0\n  mha:\n    value_shift: true\n");
  EXPECT_EQ(d.message,
            "attention.mha.value_shift splits the 3 value channels (1 kv heads × head_dim 3) in "
            "halves; it needs an even number (an even head_dim or an even n_kv_heads)");
  EXPECT_EQ(d.origin.line, 9);
  satisfied(
      "model:\n  d_model: 9\nattention:\n  kind: gqa\n  n_heads: 3\n  n_kv_heads: 1\n"
      "  rope_fraction: 0.0\n");
}

TEST(ValidateMla, RopeHeadDimMustBeEven) {
  const Diagnostic d = broken("attention:\n  kind: mla\n  mla:\n    qk_rope_head_dim: 33\n");
  EXPECT_EQ(d.message, "attention.mla.qk_rope_head_dim = 33 must be even (rotate-half RoPE)");
  EXPECT_EQ(d.origin.line, 4);
  satisfied("attention:\n  kind: mla\n  mla:\n    qk_rope_head_dim: 32\n");
  satisfied("attention:\n  kind: mla\n  mla:\n    qk_rope_head_dim: 0\n");
  satisfied("attention:\n  kind: mha\n  mla:\n    qk_rope_head_dim: 33\n");  // not mla: ignored
}

TEST(ValidateMoe, TopKAtMostExperts) {
  const Diagnostic d = broken("moe:\n  n_experts: 2\n  top_k: 4\n");
  EXPECT_EQ(d.message, "moe.top_k = 4 exceeds moe.n_experts = 2");
  EXPECT_EQ(d.origin.line, 3);
  satisfied("moe:\n  n_experts: 4\n  top_k: 4\n");
  satisfied("moe:\n  n_experts: 0\n  top_k: 8\n");  // dense: moe keys unused
}

TEST(ValidateMoe, FirstDenseLayersMustLeaveAMoeLayer) {
  const Diagnostic d =
      broken("model:\n  n_layers: 2\nmoe:\n  n_experts: 4\n  first_dense_layers: 2\n");
  EXPECT_EQ(d.message,
            "moe.first_dense_layers = 2 leaves no MoE layer in model.n_layers = 2; lower it, or "
            "set moe.n_experts: 0 for a dense model");
  EXPECT_EQ(d.origin.line, 5);
  // With the default first_dense_layers (1), the one-layer model is to blame.
  const Diagnostic one_layer = broken("model:\n  n_layers: 1\nmoe:\n  n_experts: 4\n");
  EXPECT_TRUE(contains(one_layer.message, "moe.first_dense_layers = 1 leaves no MoE layer"));
  EXPECT_EQ(one_layer.origin.line, 2);
  satisfied("model:\n  n_layers: 2\nmoe:\n  n_experts: 4\n  first_dense_layers: 1\n");
  satisfied("model:\n  n_layers: 1\nmoe:\n  n_experts: 4\n  first_dense_layers: 0\n");
}

// ---------------------------------------------------------------------------------------------
// Lengths, batch, schedule, misc

TEST(ValidateTrain, SeqLenAtMostMaxSeqLen) {
  const Diagnostic d = broken("model:\n  max_seq_len: 512\ntrain:\n  seq_len: 1024\n");
  EXPECT_EQ(d.message, "train.seq_len = 1024 exceeds model.max_seq_len = 512");
  EXPECT_EQ(d.origin.line, 4);
  satisfied("model:\n  max_seq_len: 1024\ntrain:\n  seq_len: 1024\n");
  satisfied("model:\n  max_seq_len: 0\ntrain:\n  seq_len: 65536\n");
}

TEST(ValidateTrain, GlobalBatchSizeMustMatch) {
  const Diagnostic hint = broken("train:\n  micro_batch_size: 8\n  global_batch_size: 32\n");
  EXPECT_EQ(hint.message,
            "train.global_batch_size = 32 but micro_batch_size 8 × grad_accum 1 × world size 1 = "
            "8; grad_accum: 4 would match");
  EXPECT_EQ(hint.origin.line, 3);
  const Diagnostic no_hint = broken("train:\n  micro_batch_size: 8\n  global_batch_size: 20\n");
  EXPECT_EQ(no_hint.message,
            "train.global_batch_size = 20 but micro_batch_size 8 × grad_accum 1 × world size 1 = "
            "8");
  satisfied("train:\n  micro_batch_size: 8\n  grad_accum: 4\n  global_batch_size: 32\n");
  satisfied("train:\n  micro_batch_size: 8\n  global_batch_size: 0\n", 7);
}

TEST(ValidateTrain, GlobalBatchSizeCountsTheWorldSize) {
  const std::string yaml = "train:\n  micro_batch_size: 8\n  global_batch_size: 32\n";
  satisfied(yaml, 4);  // 8 × 1 × 4
  const Diagnostic twice = broken("train:\n  micro_batch_size: 8\n  global_batch_size: 64\n", 4);
  EXPECT_EQ(twice.message,
            "train.global_batch_size = 64 but micro_batch_size 8 × grad_accum 1 × world size 4 = "
            "32; grad_accum: 2 would match");
  const Diagnostic odd_world = broken(yaml, 3);
  EXPECT_EQ(odd_world.message,
            "train.global_batch_size = 32 but micro_batch_size 8 × grad_accum 1 × world size 3 = "
            "24");
}

TEST(ValidateSchedule, WarmupAsLongAsTheRunIsWarnedNotRefused) {
  // configs/quickstart.yaml with --set train.steps=5: the run goes ahead (the schedule cuts the
  // warmup to the run), and the warning names both keys and values.
  const Diagnostic d = warned("train:\n  steps: 5\nschedule:\n  warmup_steps: 20\n");
  EXPECT_EQ(d.message,
            "schedule.warmup_steps = 20 is not below train.steps = 5: the whole run is warmup, "
            "the learning rate climbs over all 5 steps to optim.lr, reaches it only at the last "
            "one and never decays; set schedule.warmup_steps below 5");
  EXPECT_EQ(d.origin.describe(), "rule.yaml:4:3");  // at the warmup, which was set
  const Diagnostic implicit_warmup = warned("train:\n  steps: 50\n");
  EXPECT_TRUE(contains(implicit_warmup.message,
                       "schedule.warmup_steps = 100 is not below "
                       "train.steps = 50"))
      << implicit_warmup.message;
  EXPECT_EQ(implicit_warmup.origin.line, 2);  // warmup was not set, so the steps are to blame
  const Diagnostic equal = warned("train:\n  steps: 100\n");  // a run of warmup alone
  EXPECT_TRUE(contains(equal.message, "= 100 is not below train.steps = 100")) << equal.message;
  satisfied("train:\n  steps: 101\n");
  satisfied("train:\n  steps: 10\nschedule:\n  warmup_steps: 0\n");
  satisfied("train:\n  steps: 1\nschedule:\n  warmup_steps: 0\n");
}

TEST(ValidateSchedule, ZeroStepsOnlyEvaluatesAndIsWarned) {
  const Diagnostic d = warned("train:\n  steps: 0\n");  // no warmup warning on top
  EXPECT_EQ(d.message,
            "train.steps = 0: nothing is trained; the run only evaluates the initial (or resumed) "
            "weights on data.val, if set, and writes no checkpoint");
  EXPECT_EQ(d.origin.describe(), "rule.yaml:2:3");
}

TEST(ValidateSchedule, ZeroLearningRateIsRefused) {
  const Diagnostic d = broken("optim:\n  lr: 0\n");
  EXPECT_EQ(d.message,
            "optim.lr = 0 would leave the weights unchanged; allowed: a learning rate above 0 (up "
            "to 10), e.g. 6e-4");
  EXPECT_EQ(d.origin.describe(), "rule.yaml:2:3");
  EXPECT_TRUE(contains(broken("optim:\n  lr: 0.0\n").message, "optim.lr = 0"));
  satisfied("optim:\n  lr: 1e-9\n");
}

TEST(ValidateSchedule, WarningsReachTheDirectCallerOnlyWhenAsked) {
  Config c = default_config();
  c.train.steps = 0;
  std::vector<Diagnostic> errors, warnings;
  validate_config(c, {}, 1, errors);  // no warnings vector: nothing to report
  EXPECT_TRUE(errors.empty());
  validate_config(c, {}, 1, errors, &warnings);
  EXPECT_TRUE(errors.empty());
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0].origin.describe(), "(default)");
}

TEST(ValidateOptimizer, MuonMomentumOfOneIsRefused) {
  const Diagnostic d = broken("optim:\n  kind: muon\n  muon:\n    momentum: 1.0\n");
  EXPECT_EQ(d.message,
            "optim.muon.momentum = 1 never forgets old gradients; allowed: 0 <= momentum < 1, "
            "e.g. 0.95");
  EXPECT_EQ(d.origin.describe(), "rule.yaml:4:5");
  satisfied("optim:\n  kind: muon\n  muon:\n    momentum: 0.9\n    ns_steps: 6\n");
}

TEST(ValidateOptimizer, MuonKeysWithAdamWAreWarnedNotRefused) {
  const Diagnostic d = warned("optim:\n  muon:\n    nesterov: false\n");
  EXPECT_EQ(d.message,
            "optim.muon.nesterov has no effect with optim.kind adamw; it applies to optim.kind "
            "muon");
  EXPECT_TRUE(contains(load_text_error("optim:\n  kind: lion\n").what(),
                       "optim.kind: 'lion' is not one of adamw | muon"));
}

// --dry-run's two optimizer lines for GPT-2-small: 12 × (4·768² + 3·768·2048) hidden-matrix
// parameters for Muon, the 50304 × 768 embedding and 25 norms for AdamW.
TEST(ValidateOptimizer, DryRunNamesEachOptimizersParameters) {
  const std::string gpt2 =
      "model: {d_model: 768, n_layers: 12, vocab_size: 50304}\nattention: {n_heads: 12}\n";
  const Config muon = load_ok(gpt2 + "optim: {kind: muon}\n").config;
  const ModelCounts counts = count_model(muon);
  EXPECT_EQ(counts.hidden_matrix_params, 12 * (4 * 768 * 768 + 3 * 768 * 2048));
  EXPECT_EQ(counts.total_params - counts.hidden_matrix_params, 50304 * 768 + 25 * 768);
  const std::vector<std::string> lines = describe_derived(derive_values(muon, 1));
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[lines.size() - 2],
            "optimizer   muon  84.93M parameters, 324.00 MiB of momentum: attention and FFN "
            "projection matrices");
  EXPECT_EQ(lines.back(),
            "optimizer   adamw 38.65M parameters, 294.90 MiB of moments: embeddings, norms and "
            "other vectors");
  const std::vector<std::string> adamw = describe_derived(derive_values(load_ok(gpt2).config, 1));
  EXPECT_NE(adamw.back().rfind("optimizer", 0), 0u) << "AdamW's summary is unchanged";
}

TEST(ValidateMisc, DataTrainAndRunDirMustBeNamed) {
  const Diagnostic data = broken("data:\n  train: \"\"\n");
  EXPECT_EQ(data.message, "data.train is empty; name the training shards");
  EXPECT_EQ(data.origin.line, 2);
  const Diagnostic run = broken("run:\n  dir: ''\n");
  EXPECT_EQ(run.message, "run.dir is empty; name the run folder");
  satisfied("data:\n  train: shards/\nrun:\n  dir: runs/x\n");
  satisfied("data:\n  val: ''\n");  // only the training shards are required
}

TEST(ValidateMisc, NcclNeedsCuda) {
  const Diagnostic d = broken("distributed:\n  backend: nccl\ntrain:\n  device: cpu\n");
  EXPECT_EQ(d.message,
            "distributed.backend nccl needs CUDA, but train.device is cpu; use gloo or auto");
  EXPECT_EQ(d.origin.line, 2);
  satisfied("distributed:\n  backend: nccl\ntrain:\n  device: cuda\n");
  satisfied("distributed:\n  backend: nccl\n");  // device auto
  satisfied("distributed:\n  backend: gloo\ntrain:\n  device: cpu\n");
}

TEST(ValidateMisc, CudaGraphsNeedCudaAndNoRecomputation) {
  const Diagnostic cpu = broken("train:\n  cuda_graphs: true\n  device: cpu\n");
  EXPECT_EQ(cpu.message,
            "train.cuda_graphs needs CUDA, but train.device is cpu; set train.cuda_graphs: false");
  EXPECT_EQ(cpu.origin.line, 2);
  const Diagnostic both = broken("train:\n  activation_checkpointing: true\n  cuda_graphs: true\n");
  EXPECT_TRUE(contains(both.message, "cannot be combined yet")) << both.message;
  EXPECT_EQ(both.origin.line, 3);
  satisfied("train:\n  cuda_graphs: true\n");  // device auto: checked when the run starts
  satisfied("train:\n  cuda_graphs: true\n  device: cuda\n");
}

TEST(ValidateMisc, Fp8NeedsAGpuAndItsScalingKeyNeedsFp8) {
  const Diagnostic cpu = broken("train:\n  precision: fp8\n  device: cpu\n");
  EXPECT_TRUE(contains(cpu.message, "train.precision: fp8 needs an NVIDIA GPU")) << cpu.message;
  EXPECT_TRUE(contains(cpu.message, "allowed on the CPU: auto, fp32, bf16")) << cpu.message;
  EXPECT_EQ(cpu.origin.line, 2);
  satisfied("train:\n  precision: fp8\n");  // device auto: the GPU is checked at start
  satisfied("train:\n  precision: fp8\n  fp8:\n    scaling: row\n  device: cuda\n");
  const Diagnostic unused = warned("train:\n  precision: bf16\n  fp8:\n    scaling: row\n");
  EXPECT_TRUE(contains(unused.message, "train.fp8.scaling has no effect")) << unused.message;
  const Diagnostic bad = broken("train:\n  precision: fp8\n  fp8:\n    scaling: block\n");
  EXPECT_TRUE(contains(bad.message, "train.fp8.scaling")) << bad.message;
}

TEST(ValidateMisc, DocumentMaskingRules) {
  const Diagnostic positions = broken("data:\n  reset_positions: true\n");
  EXPECT_TRUE(contains(positions.message, "needs data.document_masking: true"))
      << positions.message;
  EXPECT_EQ(positions.origin.line, 2);
  const Diagnostic graphs =
      broken("data:\n  document_masking: true\ntrain:\n  cuda_graphs: true\n  device: cuda\n");
  EXPECT_TRUE(contains(graphs.message, "data.document_masking and train.cuda_graphs"))
      << graphs.message;
  satisfied("data:\n  document_masking: true\n  reset_positions: true\n");
  satisfied("data:\n  document_masking: true\n");
}

TEST(ValidateMisc, EveryBrokenRuleIsReported) {
  const ConfigError e = load_text_error(
      "attention:\n  kind: gqa\nmoe:\n  n_experts: 2\n  top_k: 3\noptim:\n  lr: 0\n"
      "run:\n  dir: ''\n");
  ASSERT_EQ(e.diagnostics().size(), 4u) << e.what();
  EXPECT_TRUE(contains(e.what(), "kind gqa needs attention.n_kv_heads"));
  EXPECT_TRUE(contains(e.what(), "moe.top_k = 3 exceeds moe.n_experts = 2"));
  EXPECT_TRUE(contains(e.what(), "optim.lr = 0 would leave the weights unchanged"));
  EXPECT_TRUE(contains(e.what(), "run.dir is empty"));
}

TEST(ValidateMisc, DirectCallReportsDefaultsAsDefault) {
  Config c = default_config();
  std::vector<Diagnostic> out;
  validate_config(c, {}, 1, out);
  EXPECT_TRUE(out.empty());
  c.attention.kind = "gqa";
  c.train.device = "cpu";
  c.distributed.backend = "nccl";
  validate_config(c, {}, 1, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].origin.describe(), "(default)");
  const std::map<std::string, Origin> origins = {{"train.device", Origin{"x.yaml", 9, 3}}};
  out.clear();
  validate_config(c, origins, 1, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].origin.describe(), "x.yaml:9:3");  // the nccl rule falls back to train.device
}

// ---------------------------------------------------------------------------------------------
// Geometry

TEST(Geometry, Mha) {
  const AttentionGeometry g = attention_geometry(default_config());
  EXPECT_EQ(g.kind, "mha");
  EXPECT_EQ(g.model_dim, 768);
  EXPECT_EQ(g.n_q_heads, 12);
  EXPECT_EQ(g.n_kv_heads, 12);
  EXPECT_EQ(g.head_dim, 64);
  EXPECT_EQ(g.v_head_dim, 64);
  EXPECT_EQ(g.rope_dim, 64);
  EXPECT_EQ(g.group_size(), 1);
  EXPECT_EQ(&g.variant(), &attention_variant("mha"));
  EXPECT_EQ(decode_state_elements(g), 0);
}

TEST(Geometry, GqaAndExplicitHeadDim) {
  Config c = default_config();
  c.attention.kind = "gqa";
  c.attention.n_kv_heads = 4;
  c.attention.qk_norm = true;
  c.attention.rope_fraction = 0.5;
  AttentionGeometry g = attention_geometry(c);
  EXPECT_EQ(g.n_q_heads, 12);
  EXPECT_EQ(g.n_kv_heads, 4);
  EXPECT_EQ(g.group_size(), 3);
  EXPECT_EQ(g.n_kv_heads * g.head_dim, 256);
  EXPECT_EQ(g.rope_dim, 32);
  EXPECT_TRUE(g.qk_norm);
  c.attention.head_dim = 128;  // explicit head_dim beats d_model / n_heads
  g = attention_geometry(c);
  EXPECT_EQ(g.head_dim, 128);
  EXPECT_EQ(g.n_q_heads * g.head_dim, 12 * 128);
  c.attention.kind = "mha";  // n_kv_heads only counts for gqa
  EXPECT_EQ(attention_geometry(c).n_kv_heads, 12);
}

TEST(Geometry, Mla) {
  Config c = default_config();
  c.attention.kind = "mla";
  c.attention.settings.set("attention.mla.q_lora_rank", 384);
  c.attention.settings.set("attention.mla.kv_lora_rank", 320);
  c.attention.settings.set("attention.mla.qk_nope_head_dim", 64);
  c.attention.settings.set("attention.mla.qk_rope_head_dim", 32);
  c.attention.settings.set("attention.mla.v_head_dim", 48);
  variants::MlaGeometry g = variants::mla_geometry(attention_geometry(c));
  EXPECT_EQ(g.n_q_heads, 12);
  EXPECT_EQ(g.n_kv_heads, 1);
  EXPECT_EQ(g.head_dim, 96);
  EXPECT_EQ(g.rope_dim, 32);
  EXPECT_EQ(g.qk_nope_dim, 64);
  EXPECT_EQ(g.v_head_dim, 48);
  EXPECT_EQ(g.q_lora_rank, 384);
  EXPECT_EQ(g.kv_lora_rank, 320);
  c.attention.settings.set("attention.mla.q_lora_rank", std::nullopt);
  EXPECT_EQ(variants::mla_geometry(attention_geometry(c)).q_lora_rank, 0);
}

TEST(Geometry, Cca) {
  Config c = default_config();
  c.attention.kind = "cca";
  c.attention.rope_fraction = 0.5;
  c.attention.settings.set("attention.cca.q_compression", 4);
  const variants::CcaGeometry g = variants::cca_geometry(attention_geometry(c));
  EXPECT_EQ(g.kind, "cca");
  EXPECT_EQ(g.head_dim, 64);
  EXPECT_EQ(g.n_q_heads, 3);
  EXPECT_EQ(g.n_kv_heads, 3);
  EXPECT_EQ(g.q_compression, 4);
  EXPECT_EQ(g.kv_compression, 4);  // 0 = same as q
  EXPECT_EQ(g.rope_dim, 32);
  EXPECT_EQ(g.convs, 2);
  EXPECT_EQ(g.conv_kernel_0, 2);
  EXPECT_EQ(g.conv_kernel_1, 2);
  EXPECT_TRUE(g.qk_mean);
  EXPECT_TRUE(g.value_shift);
  EXPECT_EQ(g.conv_channels(), 384);
  EXPECT_EQ(g.conv_padding(), 2);
}

TEST(Geometry, CcgqaZaya1) {
  Config c = default_config();
  c.model.d_model = 2048;
  c.attention.kind = "ccgqa";
  c.attention.n_heads = 16;
  c.attention.rope_fraction = 0.5;
  c.attention.settings.set("attention.cca.q_compression", 2);
  c.attention.settings.set("attention.cca.kv_compression", 8);
  c.attention.settings.set("attention.cca.qk_mean", false);
  variants::CcaGeometry g = variants::cca_geometry(attention_geometry(c));
  EXPECT_EQ(g.head_dim, 128);
  EXPECT_EQ(g.n_q_heads, 8);
  EXPECT_EQ(g.n_kv_heads, 2);
  EXPECT_EQ(g.group_size(), 4);
  EXPECT_EQ(g.q_latent_width(), 1024);
  EXPECT_EQ(g.n_kv_heads * g.head_dim, 256);
  EXPECT_EQ(g.conv_channels(), 1280);
  EXPECT_EQ(g.rope_dim, 64);
  EXPECT_FALSE(g.qk_mean);
  // P = (k0 - 1) + (k1 - 1) with two convs, k0 - 1 with one, 0 with none.
  g.conv_kernel_0 = 3;
  g.conv_kernel_1 = 4;
  EXPECT_EQ(g.conv_padding(), 5);
  g.convs = 1;
  EXPECT_EQ(g.conv_padding(), 2);
  g.convs = 0;
  EXPECT_EQ(g.conv_padding(), 0);
}

TEST(Geometry, MoeLayerPattern) {
  Config c = default_config();
  c.model.n_layers = 8;
  EXPECT_EQ(moe_layer_count(c), 0);  // dense
  for (int64_t i = 0; i < 8; ++i) EXPECT_FALSE(is_moe_layer(c, i));
  c.moe.n_experts = 4;
  c.moe.first_dense_layers = 2;
  c.moe.every = 3;
  std::vector<int64_t> moe;
  for (int64_t i = 0; i < 8; ++i) {
    if (is_moe_layer(c, i)) moe.push_back(i);
  }
  EXPECT_EQ(moe, (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(moe_layer_count(c), 2);
  c.moe.first_dense_layers = 1;
  c.moe.every = 2;
  moe.clear();
  for (int64_t i = 0; i < 8; ++i) {
    if (is_moe_layer(c, i)) moe.push_back(i);
  }
  EXPECT_EQ(moe, (std::vector<int64_t>{1, 3, 5, 7}));
  c.moe.first_dense_layers = 0;
  c.moe.every = 1;
  EXPECT_EQ(moe_layer_count(c), 8);
}

TEST(Geometry, FfnWidths) {
  Config c = default_config();
  EXPECT_EQ(dense_ffn_hidden(c), 2048);  // 8/3 · 768 = 2048 exactly
  c.model.d_model = 2048;
  EXPECT_EQ(dense_ffn_hidden(c), 5632);  // 5461.3 → 5632 (multiple of 256)
  c.model.d_model = 100;
  c.model.ffn_multiple_of = 1;
  EXPECT_EQ(dense_ffn_hidden(c), 267);  // ceil(266.67)
  c.model.ffn_multiple_of = 64;
  EXPECT_EQ(dense_ffn_hidden(c), 320);
  EXPECT_EQ(expert_ffn_hidden(c), 320);  // 0 = dense width
  c.moe.expert_hidden = 96;
  EXPECT_EQ(expert_ffn_hidden(c), 96);
  c.model.ffn_hidden = 3000;
  EXPECT_EQ(dense_ffn_hidden(c), 3000);  // explicit: not rounded
}

TEST(Geometry, MaxSequenceLength) {
  Config c = default_config();
  EXPECT_EQ(max_sequence_length(c), 1024);  // 0 = train.seq_len
  c.model.max_seq_len = 8192;
  EXPECT_EQ(max_sequence_length(c), 8192);
}

}  // namespace
}  // namespace cca
