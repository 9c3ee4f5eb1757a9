// distributed.context_parallel's rules (config/validate.cpp) and what --dry-run derives from it
// (config/derived.h): the world divides into replicas, sequences into 2N chunks, and the batch
// counts replicas, not ranks.
#include <gtest/gtest.h>

#include <string>

#include "config/derived.h"
#include "config/loader.h"
#include "config_test_util.h"
#include "util/error.h"

namespace cca {
namespace {

using testutil::contains;

ConfigError load_error(const std::string& yaml, int world_size) {
  LoadOptions options;
  options.world_size = world_size;
  return testutil::expect_config_error([&] { load_config_text(yaml, "cp.yaml", options); });
}

LoadedConfig load_ok(const std::string& yaml, int world_size) {
  LoadOptions options;
  options.world_size = world_size;
  return load_config_text(yaml, "cp.yaml", options);
}

TEST(ContextParallelRules, WorldMustBeAMultiple) {
  const ConfigError e = load_error("distributed:\n  context_parallel: 4\n", 6);
  EXPECT_TRUE(contains(e.what(), "distributed.context_parallel = 4 does not divide the 6 ranks"))
      << e.what();
  (void)load_ok("distributed:\n  context_parallel: 4\n", 8);
}

TEST(ContextParallelRules, SequenceMustSplitIntoTwiceAsManyChunks) {
  const ConfigError e =
      load_error("train:\n  seq_len: 100\ndistributed:\n  context_parallel: 4\n", 4);
  EXPECT_TRUE(contains(e.what(),
                       "train.seq_len = 100 does not split into 2 x "
                       "distributed.context_parallel = 8 equal chunks"))
      << e.what();
  (void)load_ok("train:\n  seq_len: 96\ndistributed:\n  context_parallel: 4\n", 4);
}

TEST(ContextParallelRules, CudaGraphsAreRefused) {
  const ConfigError graphs = load_error(
      "train:\n  device: cuda\n  cuda_graphs: true\ndistributed:\n  context_parallel: 2\n", 2);
  EXPECT_TRUE(contains(graphs.what(), "train.cuda_graphs")) << graphs.what();
  // Also with MoE layers, which context parallelism otherwise accepts.
  const ConfigError moe_graphs = load_error(
      "moe:\n  n_experts: 4\n  top_k: 2\ntrain:\n  device: cuda\n  cuda_graphs: true\n"
      "distributed:\n  context_parallel: 2\n",
      2);
  EXPECT_TRUE(contains(moe_graphs.what(), "train.cuda_graphs")) << moe_graphs.what();
}

// The router's statistics are taken over the whole sequences (moe/moe.h), so MoE models split
// their sequences like dense ones, with every router option.
TEST(ContextParallelRules, MoeIsAccepted) {
  const LoadedConfig loaded = load_ok(
      "moe:\n  n_experts: 4\n  top_k: 2\n  shared_experts: 1\n  score: sigmoid\n"
      "  aux_loss_coef: 0.01\n  z_loss_coef: 0.001\n  bias_update_rate: 0.001\n"
      "distributed:\n  context_parallel: 2\n",
      4);
  EXPECT_EQ(loaded.config.distributed.context_parallel, 2);
  EXPECT_EQ(loaded.config.moe.n_experts, 4);
}

TEST(ContextParallelRules, TheBatchCountsReplicasAndDryRunShowsTheSplit) {
  const LoadedConfig loaded = load_ok(
      "train:\n  seq_len: 64\n  micro_batch_size: 2\n  grad_accum: 3\n  global_batch_size: 12\n"
      "distributed:\n  context_parallel: 2\n",
      4);  // 2 replicas x 2
  const DerivedValues d = derive_values(loaded.config, 4);
  EXPECT_EQ(d.sequences_per_step, 12);
  EXPECT_EQ(d.tokens_per_step, 12 * 64);
  bool found = false, batch = false;
  for (const std::string& line : describe_derived(d)) {
    if (contains(line,
                 "12 sequences = 768 tokens per optimizer step (2 data-parallel replicas "
                 "of 2 ranks)")) {
      batch = true;
    }
    if (contains(line,
                 "world 4 = 2 data-parallel x 2 context-parallel; each rank holds 32 of 64 "
                 "tokens per sequence")) {
      found = true;
    }
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE(batch);
}

TEST(ContextParallelRules, DryRunOnOneProcessSaysHowToLaunch) {
  const LoadedConfig loaded = load_ok("distributed:\n  context_parallel: 2\n", 1);
  bool found = false;
  for (const std::string& line : describe_derived(derive_values(loaded.config, 1))) {
    if (contains(line, "distributed.context_parallel = 2 needs a multiple of 2 ranks"))
      found = true;
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace cca
