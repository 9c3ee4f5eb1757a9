// Resuming with another world size, the parts that need no processes (train/reshard.h): the
// global-batch rule and its messages, the description of a loader reshard, and the generator
// seeds of ranks the writing run did not have. End to end (2 -> 1 and 1 -> 2 ranks on the CPU):
// tests/dist/test_dist_process.cpp, DistReshardTest.
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
