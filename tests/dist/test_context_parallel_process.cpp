// Context parallelism through cca-train on the CPU (Gloo, the tiny CCA model of the trainer
// tests): two ranks sharing every sequence (distributed.context_parallel: 2) train like one rank
// on the same global batch, with document masking off and on, and so do 2 replicas of 2 ranks;
// a resume under context parallelism is bit-identical, for a dense and an MoE model; a resume
// with another split reshards when the global batch stays, and is refused naming both layouts
// when it would not.
#include <gtest/gtest.h>

#include <torch/cuda.h>

#include <cmath>
#include <fstream>

#include "checkpoint/checkpoint_store.h"
#include "dist/dist_test_util.h"
#include "dist/trainer_process_test.h"
#include "train/train_test_util.h"
#include "util/files.h"

namespace cca {
namespace {

using testing::ScratchDir;

// Why these tolerances: as in test_dist_process.cpp, both runs compute the same sums associated
// differently (here the attention over gathered keys and the cross-rank gradient sums), so fp32
// differences start at ~1e-7 relative and AdamW carries them into the weights; the bounds are
// the data-parallel test's.
constexpr double kLossRelTolerance = 1e-5;
constexpr double kWeightAbsTolerance = 2e-5;

const std::vector<std::string> kTwoRanksSharingSequences = {"--nproc-per-node", "2", "--set",
                                                            "distributed.context_parallel=2"};

std::vector<std::string> with(std::vector<std::string> args, const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

class ContextParallelProcessTest : public testing::TrainerProcessTest {
 protected:
  void expect_runs_agree(const std::string& one, const std::string& two) {
    const auto a = testing::metric_by_step(dir / one, "train", "loss");
    const auto b = testing::metric_by_step(dir / two, "train", "loss");
    ASSERT_EQ(a.size(), 8u);
    ASSERT_EQ(b.size(), 8u);
    double worst = 0;
    for (const auto& [step, loss] : a) {
      worst = std::max(worst, std::abs(b.at(step) - loss) / std::abs(loss));
    }
    EXPECT_LT(worst, kLossRelTolerance);
    const auto val_a = testing::metric_by_step(dir / one, "eval", "val_loss");
    const auto val_b = testing::metric_by_step(dir / two, "eval", "val_loss");
    ASSERT_EQ(val_a.size(), val_b.size());
    for (const auto& [step, loss] : val_a) {
      EXPECT_NEAR(val_b.at(step), loss, kLossRelTolerance * loss) << "val_loss at step " << step;
    }
    const double worst_weight = worst_weight_difference(one, two, 8);
    EXPECT_LT(worst_weight, kWeightAbsTolerance);
    std::printf("%s vs %s after 8 steps: loss rel. diff %.3g, weight abs. diff %.3g\n", two.c_str(),
                one.c_str(), worst, worst_weight);
  }

  // Runs `whole` (8 steps) and `split` (stopped at 4, resumed to 8) on two ranks sharing each
  // sequence, with `extra` YAML; the checkpoints and loss curves must be bit-identical.
  void expect_resume_bit_identical(const std::string& extra) {
    ASSERT_EQ(train(with({"--config", config_file("whole", extra)}, kTwoRanksSharingSequences)), 0)
        << log_text();
    ASSERT_EQ(train(with({"--config", config_file("split", extra), "--stop-at-step", "4"},
                         kTwoRanksSharingSequences)),
              0)
        << log_text();
    ASSERT_EQ(train(with({"--config", config_file("split", extra), "--resume", "auto"},
                         kTwoRanksSharingSequences)),
              0)
        << log_text();
    expect_same_checkpoint("whole", "split", 8, "after resume");
    EXPECT_EQ(testing::metric_by_step(dir / "split", "train", "loss"),
              testing::metric_by_step(dir / "whole", "train", "loss"));
  }
};

TEST_F(ContextParallelProcessTest, TwoRanksSharingEachSequenceMatchOneRank) {
  // Both read the same 8 sequences per step (global batch = micro 4 x accum 2 x 1 replica).
  ASSERT_EQ(train({"--config", config_file("one")}), 0) << log_text();
  ASSERT_EQ(train(with({"--config", config_file("cp"), "--set", "distributed.verify_every=2"},
                       kTwoRanksSharingSequences)),
            0)
      << log_text();
  expect_runs_agree("one", "cp");
  EXPECT_NE(log_text().find("1 data-parallel x 2 context-parallel"), std::string::npos)
      << log_text();
}

TEST_F(ContextParallelProcessTest, TwoRanksSharingEachSequenceMatchOneRankWithDocuments) {
  testing::write_tiny_manifest(dir / "data", "bos", 3, 5);
  const std::vector<std::string> masking = {"--set", "data.document_masking=true", "--set",
                                            "data.reset_positions=true"};
  ASSERT_EQ(train(with({"--config", config_file("one")}, masking)), 0) << log_text();
  ASSERT_EQ(train(with(with({"--config", config_file("cp")}, masking), kTwoRanksSharingSequences)),
            0)
      << log_text();
  expect_runs_agree("one", "cp");
}

TEST_F(ContextParallelProcessTest, ResumeUnderContextParallelismIsBitIdentical) {
  expect_resume_bit_identical("");
}

// Four ranks: 2 data-parallel replicas x 2 ranks per sequence, each replica reading 4 of the 8
// sequences of a step: like one rank, and a resume on the same layout is bit-identical.
TEST_F(ContextParallelProcessTest, TwoReplicasOfTwoRanksMatchOneRankAndResumeExactly) {
  const std::vector<std::string> layout = {
      "--nproc-per-node",  "4", "--set", "distributed.context_parallel=2", "--set",
      "train.grad_accum=1"};
  ASSERT_EQ(train({"--config", config_file("one")}), 0) << log_text();
  ASSERT_EQ(train(with({"--config", config_file("whole")}, layout)), 0) << log_text();
  expect_runs_agree("one", "whole");
  EXPECT_NE(log_text().find("2 data-parallel x 2 context-parallel"), std::string::npos);
  ASSERT_EQ(train(with({"--config", config_file("split"), "--stop-at-step", "4"}, layout)), 0)
      << log_text();
  ASSERT_EQ(train(with({"--config", config_file("split"), "--resume", "auto"}, layout)), 0)
      << log_text();
  expect_same_checkpoint("whole", "split", 8, "after resume");
}

// The same two ranks, another split: each reads its own sequences (CP 1). With the checkpoint's
// grad_accum that doubles the global batch (2 replicas instead of 1), which is refused naming
// both layouts; with grad_accum 1 the run continues (resharding: test_context_parallel_reshard).
TEST_F(ContextParallelProcessTest, ResumingWithAnotherSplitKeepsTheGlobalBatch) {
  ASSERT_EQ(train(with({"--config", config_file("run"), "--stop-at-step", "4"},
                       kTwoRanksSharingSequences)),
            0)
      << log_text();
  EXPECT_NE(train({"--config", config_file("run"), "--resume", "auto", "--nproc-per-node", "2"}),
            0);
  EXPECT_NE(log_text().find("with 2 replicas × CP 1 (2 ranks): it was written by 1 replica × CP 2 "
                            "(2 ranks), and the global batch changes from 8 sequences per step"),
            std::string::npos)
      << log_text();
  EXPECT_EQ(train({"--config", config_file("run"), "--resume", "auto", "--nproc-per-node", "2",
                   "--set", "train.grad_accum=1"}),
            0)
      << log_text();
  EXPECT_NE(log_text().find("data: 1 replica × CP 2 → 2 replicas × CP 1"), std::string::npos)
      << log_text();
}

// An MoE model (layer 1 of the tiny model: 4 experts, top-2, a shared expert, both auxiliary
// losses and the bias update on): two ranks sharing each sequence train like one rank and log
// the same expert loads, 2 replicas of 2 ranks train like 2 replicas of one, and a resume under
// context parallelism is bit-identical.
const std::string kMoe =
    "moe: {n_experts: 4, top_k: 2, shared_experts: 1, aux_loss_coef: 0.1, z_loss_coef: 0.01,\n"
    "      bias_update_rate: 0.01}\n";

TEST_F(ContextParallelProcessTest, TwoRanksSharingEachSequenceMatchOneRankWithMoe) {
  ASSERT_EQ(train({"--config", config_file("one", kMoe)}), 0) << log_text();
  ASSERT_EQ(train(with({"--config", config_file("cp", kMoe)}, kTwoRanksSharingSequences)), 0)
      << log_text();
  expect_runs_agree("one", "cp");
  // The logged load is the whole sequences' on every rank (rank 0 logs), not rank 0's shard's.
  const auto load_one = testing::metric_by_step(dir / "one", "train", "moe_load_max");
  const auto load_cp = testing::metric_by_step(dir / "cp", "train", "moe_load_max");
  ASSERT_EQ(load_one.size(), 8u);
  EXPECT_EQ(load_cp, load_one);
}

// 2 replicas x 2 ranks train like 2 replicas of one rank. (Not like one rank with grad_accum 2,
// as a dense model does: the replicas read interleaved sequences, so their micro-batches group
// the step's sequences otherwise, and the Switch loss of a micro-batch is not a sum over its
// sequences. Splitting each sequence must change nothing, and that is what is compared.)
TEST_F(ContextParallelProcessTest, TwoReplicasOfTwoRanksMatchTwoReplicasOfOneWithMoe) {
  const std::vector<std::string> replicas = {"--set", "train.grad_accum=1", "--nproc-per-node"};
  ASSERT_EQ(train(with(with({"--config", config_file("dp", kMoe)}, replicas), {"2"})), 0)
      << log_text();
  ASSERT_EQ(train(with(with({"--config", config_file("dpcp", kMoe)}, replicas),
                       {"4", "--set", "distributed.context_parallel=2"})),
            0)
      << log_text();
  expect_runs_agree("dp", "dpcp");
  EXPECT_NE(log_text().find("2 data-parallel x 2 context-parallel"), std::string::npos);
}

TEST_F(ContextParallelProcessTest, ResumeUnderContextParallelismIsBitIdenticalWithMoe) {
  expect_resume_bit_identical(kMoe);
}

// On two GPUs (NCCL groups, the CCA reference prologue with its halo, SDPA over the gathered
// keys under the mask) in fp32: like one GPU within 1e-4 relative on the losses (the GPU kernels
// sum in other orders than the CPU's, and may use TF32). Skips without two GPUs.
TEST_F(ContextParallelProcessTest, TwoGpusSharingEachSequenceMatchOneGpu) {
  if (torch::cuda::device_count() < 2) GTEST_SKIP() << "needs 2 CUDA devices";
  const std::vector<std::string> gpu = {"--set", "train.device=cuda", "--set",
                                        "train.precision=fp32"};
  ASSERT_EQ(train(with({"--config", config_file("one")}, gpu)), 0) << log_text();
  ASSERT_EQ(train(with(with({"--config", config_file("cp")}, gpu), kTwoRanksSharingSequences)), 0)
      << log_text();
  const auto a = testing::metric_by_step(dir / "one", "train", "loss");
  const auto b = testing::metric_by_step(dir / "cp", "train", "loss");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  for (const auto& [step, loss] : a) EXPECT_NEAR(b.at(step), loss, 1e-4 * loss) << step;
  EXPECT_NE(log_text().find("nccl"), std::string::npos) << log_text();
}

// The MoE model on two GPUs (the counts' all-gather on NCCL, int64) against one GPU, in fp32, to
// the dense GPU test's 1e-4 on the losses. A rounding difference can flip a token's expert choice
// on the GPU (routing is discrete), which moves the losses by far less than a wrong statistic
// does (2.8e-4 on the CPU). Skips without two GPUs.
TEST_F(ContextParallelProcessTest, TwoGpusSharingEachSequenceMatchOneGpuWithMoe) {
  if (torch::cuda::device_count() < 2) GTEST_SKIP() << "needs 2 CUDA devices";
  const std::vector<std::string> gpu = {"--set", "train.device=cuda", "--set",
                                        "train.precision=fp32"};
  ASSERT_EQ(train(with({"--config", config_file("one", kMoe)}, gpu)), 0) << log_text();
  ASSERT_EQ(
      train(with(with({"--config", config_file("cp", kMoe)}, gpu), kTwoRanksSharingSequences)), 0)
      << log_text();
  const auto a = testing::metric_by_step(dir / "one", "train", "loss");
  const auto b = testing::metric_by_step(dir / "cp", "train", "loss");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  for (const auto& [step, loss] : a) EXPECT_NEAR(b.at(step), loss, 1e-4 * loss) << step;
  EXPECT_NE(log_text().find("nccl"), std::string::npos) << log_text();
}

}  // namespace
}  // namespace cca
