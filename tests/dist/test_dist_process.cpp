// Data-parallel cca-train end to end on the CPU (Gloo, 2 ranks on one machine, the tiny model of
// the trainer tests): the 2-rank run matches the 1-rank run with the same global batch, resume
// is exact with 2 ranks, a resume with another world size reshards (2 -> 1 and 1 -> 2) and
// continues the same tokens, differing configs are refused, and a rank that dies or hangs ends
// the job with a message naming it.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "checkpoint/checkpoint_store.h"
#include "data/loader.h"
#include "dist/dist_test_util.h"
#include "dist/trainer_process_test.h"
#include "launch/launcher.h"
#include "train/reshard.h"
#include "train/tensor_io.h"
#include "train/train_test_util.h"
#include "util/format.h"

namespace cca {
namespace {

using testing::ScratchDir;

// Why these tolerances: both runs see the same 8 sequences per step and weight every token
// alike, but the sums are associated differently. One rank adds the gradients of its two
// micro-batches (sequences 0-3, then 4-7) in place; two ranks each back-propagate one
// micro-batch (sequences 0,2,4,6 and 1,3,5,7) and Gloo adds the two results. fp32 addition is
// not associative, so the gradients differ in their last bits (~1e-7 relative); AdamW's update
// is normalised by sqrt(v), so such differences pass into the weights at the same relative size
// and compound over steps. Measured over the 8 steps: 1.2e-7 relative on the losses, 1.0e-6
// absolute on the weights; the bounds leave ~100x and ~20x of room. AdamW does not see the
// gradients' scale, so a wrong averaging factor would leave losses and weights alike: the
// logged gradient norm (before clipping) is compared too.
constexpr double kLossRelTolerance = 1e-5;
constexpr double kWeightAbsTolerance = 2e-5;

class DistProcessTest : public testing::TrainerProcessTest {
 protected:
  // Losses, gradient norms, validation losses and weights of a 1-rank and a 2-rank run agree
  // within the tolerances above.
  void expect_one_rank_equals_two(const std::string& one, const std::string& two) {
    const auto losses_one = testing::metric_by_step(dir / one, "train", "loss");
    const auto losses_two = testing::metric_by_step(dir / two, "train", "loss");
    ASSERT_EQ(losses_one.size(), 8u);
    ASSERT_EQ(losses_two.size(), 8u);
    double worst_loss = 0;
    for (const auto& [step, loss] : losses_one) {
      worst_loss = std::max(worst_loss, std::abs(losses_two.at(step) - loss) / std::abs(loss));
    }
    EXPECT_LT(worst_loss, kLossRelTolerance);
    const auto norm_one = testing::metric_by_step(dir / one, "train", "grad_norm");
    const auto norm_two = testing::metric_by_step(dir / two, "train", "grad_norm");
    for (const auto& [step, norm] : norm_one) {
      EXPECT_NEAR(norm_two.at(step), norm, kLossRelTolerance * norm)
          << "grad_norm at step " << step;
    }
    const auto val_one = testing::metric_by_step(dir / one, "eval", "val_loss");
    const auto val_two = testing::metric_by_step(dir / two, "eval", "val_loss");
    ASSERT_EQ(val_one.size(), val_two.size());
    for (const auto& [step, loss] : val_one) {
      EXPECT_NEAR(val_two.at(step), loss, kLossRelTolerance * loss) << "val_loss at step " << step;
    }
    const double worst_weight = worst_weight_difference(one, two, 8);
    EXPECT_LT(worst_weight, kWeightAbsTolerance);
    std::printf("%s vs %s after 8 steps: loss rel. diff %.3g, weight abs. diff %.3g\n", two.c_str(),
                one.c_str(), worst_loss, worst_weight);
  }
};

TEST_F(DistProcessTest, TwoRanksMatchOneRankWithTheSameGlobalBatch) {
  // One rank: 2 micro-batches of 4 sequences per step. Two ranks: 1 micro-batch of 4 each.
  ASSERT_EQ(train({"--config", config_file("one")}), 0) << log_text();
  ASSERT_EQ(train({"--config", config_file("two"), "--nproc-per-node", "2", "--set",
                   "train.grad_accum=1", "--set", "distributed.verify_every=2"}),
            0)
      << log_text();
  expect_one_rank_equals_two("one", "two");
  EXPECT_NE(log_text().find("launcher    2 ranks on this node"), std::string::npos);
  EXPECT_NE(log_text().find("dist        rank 1/2 (local 1/2, node 0)"), std::string::npos)
      << log_text();
}

// Muon: 2 ranks match 1 rank as AdamW does (the orthogonalisation normalises the update, so the
// gradients' last-bit differences pass into the weights at the same relative size), and ZeRO-1,
// where each rank orthogonalises the matrices it owns and broadcasts them, is bit-identical to the
// unsharded 2-rank run, resumed half-way included.
TEST_F(DistProcessTest, MuonTwoRanksMatchOneRankWithAndWithoutZero1) {
  const std::vector<std::string> two = {
      "--nproc-per-node",   "2",     "--set",
      "train.grad_accum=1", "--set", "distributed.verify_every=1"};
  auto with = [&](const std::string& run, std::vector<std::string> args, int ranks, bool sharded) {
    args.insert(args.begin(), {"--config", config_file(run), "--set", "optim.kind=muon", "--set",
                               "optim.lr=1e-2"});
    if (ranks == 2) args.insert(args.end(), two.begin(), two.end());
    if (sharded) args.insert(args.end(), {"--set", "distributed.zero1=true"});
    return args;
  };
  ASSERT_EQ(train(with("one", {}, 1, false)), 0) << log_text();
  ASSERT_EQ(train(with("two", {}, 2, false)), 0) << log_text();
  expect_one_rank_equals_two("one", "two");
  ASSERT_EQ(train(with("zero1", {"--stop-at-step", "4"}, 2, true)), 0) << log_text();
  ASSERT_EQ(train(with("zero1", {"--resume", "auto"}, 2, true)), 0) << log_text();
  for (const char* name : {"model.safetensors", "optimizer.safetensors"}) {
    EXPECT_TRUE(files::read_file(file("two", 8, name)) == files::read_file(file("zero1", 8, name)))
        << name << " differs between the ZeRO-1 run and the unsharded one";
  }
  EXPECT_NE(log_text().find("ZeRO-1: this rank keeps Muon and AdamW state for"), std::string::npos);
}

TEST_F(DistProcessTest, ResumeWithTwoRanksIsBitIdentical) {
  const std::vector<std::string> two = {"--nproc-per-node", "2", "--set", "train.grad_accum=1"};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), two.begin(), two.end());
    return args;
  };
  ASSERT_EQ(train(with({"--config", config_file("whole")})), 0) << log_text();
  ASSERT_EQ(train(with({"--config", config_file("split"), "--stop-at-step", "4"})), 0)
      << log_text();
  ASSERT_EQ(train(with({"--config", config_file("split"), "--resume", "auto"})), 0) << log_text();
  expect_same_checkpoint("whole", "split", 8, "after resume");
  EXPECT_EQ(testing::metric_by_step(dir / "split", "train", "loss"),
            testing::metric_by_step(dir / "whole", "train", "loss"));
  // Both ranks' generator states are in the checkpoint.
  const std::string rng = files::read_file(file("split", 8, "rng.safetensors"));
  EXPECT_NE(rng.find("cpu/rank0"), std::string::npos);
  EXPECT_NE(rng.find("cpu/rank1"), std::string::npos);
}

// A two-source mixture with two stages (testing::tiny_mixture_overrides): stopped in the middle
// of the first stage and exactly at the stage boundary, two ranks resume bit-exactly, and the
// checkpoint records the stage and every source's position.
TEST_F(DistProcessTest, MixtureResumeWithTwoRanksIsBitIdenticalMidStageAndAtTheBoundary) {
  const std::string web = testing::write_tiny_dataset(dir / "web", 11);
  const std::string code = testing::write_tiny_dataset(dir / "code", 31);
  auto with = [&](std::vector<std::string> args) {
    for (const char* a : {"--nproc-per-node", "2", "--set", "train.grad_accum=1"})
      args.push_back(a);
    for (const std::string& set : testing::tiny_mixture_overrides(web, code)) {
      args.push_back("--set");
      args.push_back(set);
    }
    return args;
  };
  ASSERT_EQ(train(with({"--config", config_file("whole")})), 0) << log_text();
  for (const std::string stop : {"2", "4"}) {
    const std::string run = "split" + stop;
    ASSERT_EQ(train(with({"--config", config_file(run), "--stop-at-step", stop})), 0) << log_text();
    ASSERT_EQ(train(with({"--config", config_file(run), "--resume", "auto"})), 0) << log_text();
    expect_same_checkpoint("whole", run, 8, std::string("after resuming at step ") + stop);
    EXPECT_EQ(testing::metric_by_step(dir / run, "train", "loss"),
              testing::metric_by_step(dir / "whole", "train", "loss"));
  }
  const std::string manifest = files::read_file(file("split4", 4, "manifest.json"));
  EXPECT_NE(manifest.find("cca-mixture-state 1 sequences=32 stage=0"), std::string::npos)
      << manifest;
  EXPECT_NE(manifest.find("source=code tokens=256 stage_tokens=256"), std::string::npos)
      << manifest;
  EXPECT_EQ(testing::metric_by_step(dir / "whole", "train", "tokens/code").at(8), 32 * 32);
}

// ZeRO-1 applies the same element-wise AdamW to the same clipped gradients, only on the owning
// rank, so weights and (gathered) optimizer state are bit-identical to the unsharded run, and a
// sharded run resumes exactly.
TEST_F(DistProcessTest, Zero1IsBitIdenticalToTheUnshardedRunAndResumesExactly) {
  const std::vector<std::string> two = {"--nproc-per-node", "2", "--set", "train.grad_accum=1"};
  const std::vector<std::string> zero1 = {"--set", "distributed.zero1=true", "--set",
                                          "distributed.verify_every=1"};
  auto with = [&](std::vector<std::string> args, bool sharded) {
    args.insert(args.end(), two.begin(), two.end());
    if (sharded) args.insert(args.end(), zero1.begin(), zero1.end());
    return args;
  };
  ASSERT_EQ(train(with({"--config", config_file("plain")}, false)), 0) << log_text();
  ASSERT_EQ(train(with({"--config", config_file("zero1"), "--stop-at-step", "4"}, true)), 0)
      << log_text();
  ASSERT_EQ(train(with({"--config", config_file("zero1"), "--resume", "auto"}, true)), 0)
      << log_text();
  for (const char* name : {"model.safetensors", "optimizer.safetensors"}) {
    EXPECT_TRUE(files::read_file(file("plain", 8, name)) ==
                files::read_file(file("zero1", 8, name)))
        << name << " differs between the ZeRO-1 run and the unsharded one";
  }
  EXPECT_NE(log_text().find("ZeRO-1: this rank keeps AdamW state for"), std::string::npos);
}

using testing::data_positions;
using testing::DataPosition;

// Resharding (docs/distributed.md, "Resuming with another world size"): `first` ranks train 4
// steps and checkpoint, `second` ranks resume to step 8, both with 8 sequences per step; the
// 2-rank parts use ZeRO-1, so its shards are re-partitioned (2 -> 1) or built from a 1-rank
// checkpoint (1 -> 2). Compared with an uninterrupted run of `first` ranks: every step's
// checkpoint holds the same global data position (so the same windows were read, none twice,
// none skipped), the losses, gradient norms and weights agree to the same tolerances as 2 ranks
// against 1 (the same sequences per step, summed in another order), and the optimizer's step
// counts are exact (every rank restored the moments it owns).
class DistReshardTest : public DistProcessTest {
 protected:
  std::vector<std::string> ranks(int world) {
    std::vector<std::string> args = {"--set", "checkpoint.every=1", "--set",
                                     "checkpoint.keep_last=20"};
    if (world == 1) return args;  // the tiny config: 1 rank x 2 micro-batches of 4
    for (const char* a : {"--nproc-per-node", "2", "--set", "train.grad_accum=1", "--set",
                          "distributed.zero1=true", "--set", "distributed.verify_every=1"}) {
      args.push_back(a);
    }
    return args;
  }
  std::vector<std::string> with(std::vector<std::string> args, int world) {
    const std::vector<std::string> extra = ranks(world);
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), every_run.begin(), every_run.end());
    return args;
  }
  std::vector<std::string> every_run;  // more arguments for every launch

  void reshard_and_compare(int first, int second) {
    ASSERT_EQ(train(with({"--config", config_file("whole")}, first)), 0) << log_text();
    ASSERT_EQ(train(with({"--config", config_file("split"), "--stop-at-step", "4"}, first)), 0)
        << log_text();
    ASSERT_EQ(train(with({"--config", config_file("split"), "--resume", "auto"}, second)), 0)
        << log_text();
    const std::string text = log_text();
    EXPECT_NE(text.find(format("resharding: the checkpoint was written by {} rank{}, this run "
                               "has {} rank",
                               first, first == 1 ? "" : "s", second)),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("resume      data: epoch 0, shard 0: 32 window(s) of the shard read by"),
              std::string::npos)
        << text;

    const auto whole = data_positions(dir / "whole"), split = data_positions(dir / "split");
    ASSERT_EQ(whole.size(), 8u);
    ASSERT_EQ(split.size(), 8u);
    for (int64_t step = 1; step <= 8; ++step) {
      SCOPED_TRACE(::testing::Message() << "step " << step);
      const DataPosition& a = whole.at(step);
      const DataPosition& b = split.at(step);
      EXPECT_EQ(a.read, 8 * step) << "8 sequences per step";
      EXPECT_EQ(b.epoch, a.epoch);
      EXPECT_EQ(b.shard, a.shard);
      EXPECT_EQ(b.read, a.read);
      EXPECT_EQ(b.world_size, step <= 4 ? first : second);
    }

    const auto loss_whole = testing::metric_by_step(dir / "whole", "train", "loss");
    const auto loss_split = testing::metric_by_step(dir / "split", "train", "loss");
    const auto norm_whole = testing::metric_by_step(dir / "whole", "train", "grad_norm");
    const auto norm_split = testing::metric_by_step(dir / "split", "train", "grad_norm");
    ASSERT_EQ(loss_split.size(), 8u);
    double worst_loss = 0;
    for (const auto& [step, loss] : loss_whole) {
      if (step <= 4) {
        EXPECT_EQ(loss_split.at(step), loss) << "the same run up to the checkpoint";
        continue;
      }
      worst_loss = std::max(worst_loss, std::abs(loss_split.at(step) - loss) / std::abs(loss));
      EXPECT_NEAR(norm_split.at(step), norm_whole.at(step), kLossRelTolerance * norm_whole.at(step))
          << "grad_norm at step " << step;
    }
    EXPECT_LT(worst_loss, kLossRelTolerance);

    const double worst_weight = worst_weight_difference("whole", "split", 8);
    EXPECT_LT(worst_weight, kWeightAbsTolerance);
    const auto o_split = read_tensors(file("split", 8, "optimizer.safetensors"));
    const auto o_whole = read_tensors(file("whole", 8, "optimizer.safetensors"));
    ASSERT_EQ(o_split.size(), o_whole.size());
    for (const auto& [name, tensor] : o_whole) {
      if (name.rfind("step/", 0) != 0) continue;
      EXPECT_EQ(o_split.at(name).item<double>(), 8.0) << name;
    }
    std::printf(
        "%d -> %d rank(s) at step 4, against %d rank(s) throughout: loss rel. diff %.3g, "
        "weight abs. diff %.3g\n",
        first, second, first, worst_loss, worst_weight);
  }
};

TEST_F(DistReshardTest, TwoRanksToOneContinueTheSameTokens) {
  reshard_and_compare(2, 1);
  EXPECT_NE(log_text().find(
                "generators: rank 0 restored; the checkpoint's states of rank 1 are not used"),
            std::string::npos)
      << log_text();
  EXPECT_NE(log_text().find("optimizer: the checkpoint's full AdamW state, on every rank"),
            std::string::npos);
}

TEST_F(DistReshardTest, OneRankToTwoContinuesTheSameTokens) {
  reshard_and_compare(1, 2);
  EXPECT_NE(log_text().find("re-partitioned into ZeRO-1 shards over 2 ranks"), std::string::npos)
      << log_text();
  // Nothing in a training step draws random numbers, so at step 8 each rank's generator is still
  // where the resume put it: rank 0's as the 1-rank run left it, rank 1's seeded from
  // (train.seed 5, step 4, rank 1).
  const auto rng_split = read_tensors(file("split", 8, "rng.safetensors"));
  const auto rng_whole = read_tensors(file("whole", 8, "rng.safetensors"));
  ASSERT_EQ(rng_split.count("cpu/rank0"), 1u);
  ASSERT_EQ(rng_split.count("cpu/rank1"), 1u);
  EXPECT_TRUE(rng_split.at("cpu/rank0").equal(rng_whole.at("cpu")));
  at::Generator derived = at::make_generator<at::CPUGeneratorImpl>(derived_rank_seed(5, 4, 1));
  EXPECT_TRUE(rng_split.at("cpu/rank1").equal(derived.get_state()));
  EXPECT_FALSE(rng_split.at("cpu/rank1").equal(rng_split.at("cpu/rank0")));
  EXPECT_NE(log_text().find(format("rank 1 did not exist in that run, seeded from (train.seed "
                                   "5, step 4, rank): rank 1 0x{:x}",
                                   derived_rank_seed(5, 4, 1))),
            std::string::npos)
      << log_text();
}

// Muon's momentum buffers re-partition like AdamW's moments: a 1-rank Muon checkpoint continues
// on 2 ranks with ZeRO-1 as closely as the uninterrupted 1-rank run.
TEST_F(DistReshardTest, MuonOneRankToTwoRepartitionsItsMomentum) {
  every_run = {"--set", "optim.kind=muon", "--set", "optim.lr=1e-2"};
  reshard_and_compare(1, 2);
  EXPECT_NE(log_text().find("optimizer: the checkpoint's full Muon and AdamW state, "
                            "re-partitioned into ZeRO-1 shards over 2 ranks"),
            std::string::npos)
      << log_text();
}

TEST_F(DistReshardTest, AnotherGlobalBatchIsRefusedUnlessAskedFor) {
  const std::string config = config_file("run");
  ASSERT_EQ(train(with({"--config", config, "--stop-at-step", "2"}, 2)), 0) << log_text();
  // 2 ranks x 4 sequences, then 1 rank x 4: half the batch, refused naming the keys and the fix.
  EXPECT_EQ(train(with({"--config", config, "--resume", "auto", "--set", "train.grad_accum=1"}, 1)),
            1);
  const std::string refused = log_text();
  for (const char* expected :
       {"with 1 rank: it was written by 2 ranks, and the global batch changes from 8 sequences "
        "per step (train.micro_batch_size 4 × train.grad_accum 1 × 2 ranks) to 4 "
        "(train.micro_batch_size 4 × train.grad_accum 1 × 1 rank)",
        "keep it with --set train.grad_accum=2", "--set train.global_batch_size=4"}) {
    EXPECT_NE(refused.find(expected), std::string::npos) << expected << "\n" << refused;
  }
  // Asked for: resumes, warns, and the data position moves on by 4 windows a step.
  ASSERT_EQ(train(with({"--config", config, "--resume", "auto", "--set", "train.grad_accum=1",
                        "--set", "train.global_batch_size=4", "--stop-at-step", "4"},
                       1)),
            0)
      << log_text();
  EXPECT_NE(log_text().find("as train.global_batch_size = 4 asks"), std::string::npos)
      << log_text();
  const auto positions = data_positions(dir / "run");
  EXPECT_EQ(positions.at(2).read, 16);
  EXPECT_EQ(positions.at(3).read, 20);
  EXPECT_EQ(positions.at(4).read, 24);
  EXPECT_EQ(positions.at(4).world_size, 1);
}

// Rank 0 writes; when its write fails, every rank must learn it (no rank waits at a barrier that
// rank 0 never reaches) and go on, or stop together after checkpoint.max_write_failures.
TEST_F(DistProcessTest, AFailedCheckpointWriteIsSurvivedByEveryRank) {
  const std::vector<std::string> args = {
      "--config", config_file("run"),  "--nproc-per-node", "2", "--set", "train.grad_accum=1",
      "--set",    "checkpoint.every=2"};
  ASSERT_EQ(train(args, {"CCA_TEST_CHECKPOINT_FAIL_COMMITS=1"}), 0) << log_text();
  std::vector<int64_t> steps;
  for (const auto& entry : checkpoint_store::list(dir / "run/checkpoints")) {
    steps.push_back(entry.step);
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{4, 6, 8})) << log_text();
  EXPECT_NE(log_text().find("checkpoint  step 2 not written"), std::string::npos) << log_text();
}

TEST_F(DistProcessTest, CheckpointWritesFailingInARowStopEveryRank) {
  const std::vector<std::string> args = {"--config",
                                         config_file("run"),
                                         "--nproc-per-node",
                                         "2",
                                         "--set",
                                         "train.grad_accum=1",
                                         "--set",
                                         "checkpoint.every=2",
                                         "--set",
                                         "checkpoint.max_write_failures=2"};
  EXPECT_EQ(train(args, {"CCA_TEST_CHECKPOINT_FAIL_COMMITS=100"}), 1) << log_text();
  EXPECT_NE(log_text().find("checkpoint of step 4 not written: 2 write(s) failed in a row"),
            std::string::npos)
      << log_text();
  EXPECT_TRUE(checkpoint_store::list(dir / "run/checkpoints").empty());
}

TEST_F(DistProcessTest, DifferentConfigsAcrossRanksAreNamed) {
  const int port = dist::pick_free_local_port();
  const std::string config = config_file("run");
  const pid_t rank0 =
      testing::spawn_trainer({"--config", config}, log, testing::rank_env(0, 2, port));
  const pid_t rank1 = testing::spawn_trainer({"--config", config, "--set", "optim.lr=0.001"}, log,
                                             testing::rank_env(1, 2, port));
  EXPECT_EQ(testing::wait_for(rank0, 120), 1);
  EXPECT_EQ(testing::wait_for(rank1, 120), 1);
  EXPECT_NE(log_text().find("rank 1 has 'optim.lr: 0.001' where rank 0 has 'optim.lr: 0.003'"),
            std::string::npos)
      << log_text();
}

// Waits until rank 0 has logged `step` steps to metrics.jsonl (false if `pid` ended first).
bool reached_step(const std::string& run_dir, int step, pid_t pid) {
  const std::string metrics = files::join(run_dir, "metrics.jsonl");
  const std::string needle = "\"step\":" + std::to_string(step) + ",";
  bool exited = false;
  testing::wait_until(
      [&] {
        exited = waitpid(pid, nullptr, WNOHANG) == pid;
        return exited || (files::exists(metrics) &&
                          files::read_file(metrics).find(needle) != std::string::npos);
      },
      120);
  return !exited && files::exists(metrics) &&
         files::read_file(metrics).find(needle) != std::string::npos;
}

const std::vector<std::string> kLongRun = {
    "--set", "train.steps=100000", "--set", "checkpoint.every=100000",
    "--set", "train.eval_every=0", "--set", "distributed.timeout_s=5"};

TEST_F(DistProcessTest, KillingOneRankEndsTheLaunchedJobNamingIt) {
  std::vector<std::string> args = {"--config", config_file("run"),  "--nproc-per-node", "2",
                                   "--set",    "train.grad_accum=1"};
  args.insert(args.end(), kLongRun.begin(), kLongRun.end());
  const pid_t launcher = testing::spawn_trainer(args, log);
  ASSERT_TRUE(reached_step(dir / "run", 2, launcher)) << log_text();
  const std::string text = log_text();
  const size_t at = text.find("rank 1 is pid ");
  ASSERT_NE(at, std::string::npos) << text;
  const pid_t rank1 = std::stoi(text.substr(at + 14));
  const auto killed = std::chrono::steady_clock::now();
  kill(rank1, SIGKILL);
  EXPECT_EQ(testing::wait_for(launcher, 60), 128 + SIGKILL) << log_text();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
  EXPECT_LT(seconds, 20) << "the job should end well within the launcher's 10 s grace period";
  EXPECT_NE(log_text().find("error: rank 1 of 2 (pid " + std::to_string(rank1) +
                            ") was killed by signal 9"),
            std::string::npos)
      << log_text();
}

TEST_F(DistProcessTest, SigtermToTheLauncherStopsEveryRankAfterACheckpoint) {
  std::vector<std::string> args = {"--config", config_file("run"),  "--nproc-per-node", "2",
                                   "--set",    "train.grad_accum=1"};
  args.insert(args.end(), kLongRun.begin(), kLongRun.end());
  const pid_t launcher = testing::spawn_trainer(args, log);
  ASSERT_TRUE(reached_step(dir / "run", 2, launcher)) << log_text();
  kill(launcher, SIGTERM);
  EXPECT_EQ(testing::wait_for(launcher, 60), 0) << log_text();
  const auto newest = checkpoint_store::newest_complete(dir / "run/checkpoints", nullptr);
  ASSERT_TRUE(newest.has_value()) << log_text();
  EXPECT_GE(newest->step, 2);
  EXPECT_NE(log_text().find("stopped by signal 15 at step " + std::to_string(newest->step)),
            std::string::npos)
      << log_text();
}

TEST_F(DistProcessTest, AHungRankMakesTheOtherFailWithinTheTimeoutNamingTheOperation) {
  const int port = dist::pick_free_local_port();
  std::vector<std::string> args = {"--config", config_file("run"), "--set", "train.grad_accum=1"};
  args.insert(args.end(), kLongRun.begin(), kLongRun.end());
  const pid_t rank0 = testing::spawn_trainer(args, log, testing::rank_env(0, 2, port));
  const pid_t rank1 = testing::spawn_trainer(args, log, testing::rank_env(1, 2, port));
  ASSERT_TRUE(reached_step(dir / "run", 2, rank0)) << log_text();
  kill(rank1, SIGSTOP);  // alive, connected, silent: only the timeout can end rank 0's wait
  const auto stopped = std::chrono::steady_clock::now();
  const std::optional<int> code = testing::wait_for(rank0, 60);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped).count();
  kill(rank1, SIGKILL);
  testing::wait_for(rank1, 30);
  EXPECT_EQ(code, 1) << log_text();
  EXPECT_LT(seconds, 5 + 15) << "distributed.timeout_s is 5";
  EXPECT_NE(log_text().find("error: rank 0 of 2: "), std::string::npos) << log_text();
  EXPECT_NE(log_text().find(" failed: "), std::string::npos) << log_text();
}

}  // namespace
}  // namespace cca
