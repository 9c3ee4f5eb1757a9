// Resuming with another world size, the parts that need no processes (train/reshard.h): the
// global-batch rule and its messages, the description of a loader reshard, and the generator
// seeds of ranks the writing run did not have. End to end (2 -> 1 and 1 -> 2 ranks on the CPU):
// tests/dist/test_dist_process.cpp, DistReshardTest; under another context-parallel layout:
// tests/dist/test_context_parallel_reshard.cpp.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <set>
#include <string>

#include "train/reshard.h"
#include "util/error.h"

namespace cca {
namespace {

TrainConfig batch(int64_t micro, int64_t accum, int64_t global = 0) {
  TrainConfig t{};
  t.steps = 100;
  t.seq_len = 32;
  t.micro_batch_size = micro;
  t.grad_accum = accum;
  t.global_batch_size = global;
  return t;
}

std::string refusal(const TrainConfig& saved, int64_t saved_world, const TrainConfig& current,
                    int64_t world) {
  try {
    check_resume_world_size("ckpt", saved, saved_world, current, world);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(Reshard, TheSameGlobalBatchPassesSilently) {
  EXPECT_TRUE(check_resume_world_size("ckpt", batch(4, 1), 2, batch(4, 2), 1).empty());
  EXPECT_TRUE(check_resume_world_size("ckpt", batch(4, 2), 1, batch(2, 2), 2).empty());
  EXPECT_TRUE(check_resume_world_size("ckpt", batch(2, 3), 4, batch(8, 1), 3).empty());
  // The same world size is not this check's business (the config comparison reports changes).
  EXPECT_TRUE(check_resume_world_size("ckpt", batch(4, 1), 2, batch(4, 3), 2).empty());
}

TEST(Reshard, AnotherGlobalBatchIsRefusedNamingKeysValuesAndAFix) {
  const std::string half = refusal(batch(4, 1), 2, batch(4, 1), 1);
  for (const char* part :
       {"cannot resume ckpt with 1 rank: it was written by 2 ranks",
        "from 8 sequences per step (train.micro_batch_size 4 × train.grad_accum 1 × 2 ranks) to 4 "
        "(train.micro_batch_size 4 × train.grad_accum 1 × 1 rank)",
        "keep it with --set train.grad_accum=2", "--set train.global_batch_size=4"}) {
    EXPECT_NE(half.find(part), std::string::npos) << part << "\n" << half;
  }
  // grad_accum cannot do it (12 per rank from micro-batches of 8): micro_batch_size can.
  EXPECT_NE(refusal(batch(8, 3), 2, batch(8, 3), 4).find("--set train.micro_batch_size=4"),
            std::string::npos);
  // Neither alone (10 per rank from 4 x 3): both, with the largest micro-batch up to 4.
  EXPECT_NE(refusal(batch(5, 4), 1, batch(4, 3), 2)
                .find("--set train.micro_batch_size=2 --set train.grad_accum=5"),
            std::string::npos)
      << refusal(batch(5, 4), 1, batch(4, 3), 2);
  // 6 sequences cannot be split over 4 ranks.
  EXPECT_NE(
      refusal(batch(3, 2), 1, batch(3, 2), 4)
          .find("no setting keeps 6 sequences per step on 4 ranks (6 is not a multiple of 4)"),
      std::string::npos);
}

TEST(Reshard, AnotherGlobalBatchAskedForIsAWarning) {
  const auto warnings = check_resume_world_size("ckpt", batch(4, 1), 2, batch(4, 1, 4), 1);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("as train.global_batch_size = 4 asks"), std::string::npos)
      << warnings[0];
  EXPECT_NE(warnings[0].find("The schedule counts steps"), std::string::npos) << warnings[0];
}

TEST(Reshard, DescribesTheLoaderReshard) {
  data::LoaderState s;
  s.shard = 1;
  s.position = 25;
  s.world_size = 1;
  EXPECT_EQ(describe_loader_reshard(s, 2),
            "epoch 0, shard 1: 25 window(s) of the shard read by 1 rank; 2 ranks continue from "
            "there (offset 1, position 12)");
}

// Under context parallelism the global batch counts replicas (world / context_parallel).
TEST(Reshard, UnderContextParallelismTheGlobalBatchCountsReplicas) {
  // 1 replica x CP 2 -> 1 rank, 1 replica x CP 4, 2 replicas x CP 2: 8 sequences per step each.
  EXPECT_TRUE(check_resume_layout("ckpt", batch(4, 2), {2, 2}, batch(4, 2), {1, 1}).empty());
  EXPECT_TRUE(check_resume_layout("ckpt", batch(4, 2), {2, 2}, batch(4, 2), {4, 4}).empty());
  EXPECT_TRUE(check_resume_layout("ckpt", batch(4, 2), {2, 2}, batch(4, 1), {4, 2}).empty());
  EXPECT_TRUE(check_resume_layout("ckpt", batch(4, 1), {2, 1}, batch(4, 1), {4, 2}).empty());
  // Counting ranks instead would double the batch of 2 replicas x CP 2: refused.
  std::string refused;
  try {
    check_resume_layout("ckpt", batch(4, 2), {2, 2}, batch(4, 2), {4, 2});
  } catch (const Error& e) {
    refused = e.what();
  }
  for (const char* part :
       {"cannot resume ckpt with 2 replicas × CP 2 (4 ranks): it was written by 1 replica × CP 2 "
        "(2 ranks)",
        "from 8 sequences per step (train.micro_batch_size 4 × train.grad_accum 2 × 1 replica) to "
        "16 (train.micro_batch_size 4 × train.grad_accum 2 × 2 replicas)",
        "ranks / distributed.context_parallel: 2 / 2 before, 4 / 2 now",
        "keep it with --set train.grad_accum=1", "--set train.global_batch_size=16"}) {
    EXPECT_NE(refused.find(part), std::string::npos) << part << "\n" << refused;
  }
  // The same ranks split otherwise: 2 replicas x CP 2 -> 1 replica x CP 4 halves the batch.
  EXPECT_THROW(check_resume_layout("ckpt", batch(4, 1), {4, 2}, batch(4, 1), {4, 4}), Error);
  const auto warnings = check_resume_layout("ckpt", batch(4, 1), {4, 2}, batch(4, 1, 4), {4, 4});
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("with 1 replica × CP 4 (4 ranks) instead of 2 replicas × CP 2 (4 "
                             "ranks), as train.global_batch_size = 4 asks"),
            std::string::npos)
      << warnings[0];
}

// A single process with context_parallel 2 (refused when it starts training) still gets a
// message here, not a division by zero.
TEST(Reshard, ALayoutThatDoesNotDivideCountsItsRanks) {
  EXPECT_EQ((ParallelLayout{1, 2}.replicas()), 1);
  EXPECT_THROW(check_resume_layout("ckpt", batch(4, 2), {4, 2}, batch(4, 1), {1, 2}), Error);
}

CheckpointInfo checkpoint_of(int64_t world, int64_t context_parallel, int64_t position) {
  CheckpointInfo info;
  info.world_size = world;
  info.config.config.distributed.context_parallel = context_parallel;
  info.config.config.train.seed = 5;
  info.progress.step = 4;
  data::LoaderState loader;
  loader.position = position;
  loader.world_size = world / context_parallel;
  info.progress.loader = loader;
  return info;
}

TEST(Reshard, DescribesTheLayoutChange) {
  const auto lines = describe_reshard(checkpoint_of(4, 2, 16), ParallelLayout{4, 4}, false);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[0],
            "resharding: the checkpoint was written by 4 ranks with distributed.context_parallel "
            "= 2, this run has 4 ranks with distributed.context_parallel = 4");
  EXPECT_EQ(lines[1],
            "data: 2 replicas × CP 2 → 1 replica × CP 4; epoch 0, shard 0: 32 window(s) of the "
            "shard read by 2 replicas; 1 replica continue from there (offset 0, position 32)");
  EXPECT_EQ(lines[2],
            "sequences: split into 8 chunks over the 4 ranks of a replica (was split into 4 chunks "
            "over the 2 ranks of a replica)");
  EXPECT_EQ(lines[4], "generators: ranks 0-3 restored");
  // Without context parallelism on either side: the data-parallel lines as before.
  const auto plain = describe_reshard(checkpoint_of(2, 1, 16), ParallelLayout{1, 1}, false);
  EXPECT_EQ(plain[1],
            "data: epoch 0, shard 0: 32 window(s) of the shard read by 2 ranks; 1 rank continue "
            "from there (offset 0, position 32)");
  EXPECT_EQ(plain, describe_reshard(checkpoint_of(2, 1, 16), 1, false));
}

TEST(Reshard, DerivedSeedsDependOnSeedStepAndRankOnly) {
  EXPECT_EQ(derived_rank_seed(5, 4, 1), derived_rank_seed(5, 4, 1));
  std::set<uint64_t> seeds;
  for (uint64_t seed : {0u, 5u})
    for (int64_t step : {0, 4, 5})
      for (int64_t rank : {0, 1, 2, 3}) seeds.insert(derived_rank_seed(seed, step, rank));
  EXPECT_EQ(seeds.size(), 2u * 3u * 4u);

  seed_generators_of_new_rank(5, 4, 3);
  const at::Tensor state = at::detail::getDefaultCPUGenerator().get_state();
  at::Generator expected = at::make_generator<at::CPUGeneratorImpl>(derived_rank_seed(5, 4, 3));
  EXPECT_TRUE(state.equal(expected.get_state()));
}

}  // namespace
}  // namespace cca
