// Resuming under another context-parallel layout through cca-train on the CPU (Gloo, the tiny
// model): a checkpoint of DP_a x CP_a ranks continues on DP_b x CP_b ranks (docs/distributed.md,
// "Resuming with another world size"). The loader's world is the number of replicas, so the data
// position reshards from DP_a to DP_b replicas; every step must read the same windows as the
// uninterrupted run, and the losses and weights must agree with it to the fp32 tolerances of the
// context-parallel tests (the same sums, associated otherwise). A global batch that changes is
// refused naming both layouts, and a run that reads another data position fails the comparison.
#include <gtest/gtest.h>

#include <torch/cuda.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "data/loader.h"
#include "dist/trainer_process_test.h"
#include "train/tensor_io.h"
#include "train/train_test_util.h"
#include "util/files.h"
#include "util/format.h"
#include "util/json.h"

namespace cca {
namespace {

// Why these tolerances: as in test_context_parallel_process.cpp. After the resume the same 8
// sequences per step are summed in another order (other chunks per rank, other replicas), fp32
// differences start at ~1e-7 relative and AdamW carries them into the weights.
constexpr double kLossRelTolerance = 1e-5;
constexpr double kWeightAbsTolerance = 2e-5;

struct Layout {
  int world = 1;
  int context_parallel = 1;
  int replicas() const { return world / context_parallel; }
};

// How a resumed run compares with the uninterrupted one.
struct Agreement {
  int positions_differing = 0;  // steps whose checkpoint holds another data position
  double worst_loss = 0;        // relative, over the steps after the resume
  double worst_weight = 0;      // absolute, at step 8
};

class ContextParallelReshardTest : public testing::TrainerProcessTest {
 protected:
  std::vector<std::string> every_run;  // more arguments for every launch

  // Launch arguments for `layout`, keeping the tiny config's 8 sequences per step (micro-batches
  // of 4: 2 per replica with one replica, 1 with two) and a checkpoint at every step.
  std::vector<std::string> launch(std::vector<std::string> args, Layout layout) {
    const std::vector<std::string> more = {
        "--nproc-per-node",
        std::to_string(layout.world),
        "--set",
        format("distributed.context_parallel={}", layout.context_parallel),
        "--set",
        format("train.grad_accum={}", 2 / layout.replicas()),
        "--set",
        "checkpoint.every=1",
        "--set",
        "checkpoint.keep_last=20"};
    args.insert(args.end(), more.begin(), more.end());
    args.insert(args.end(), every_run.begin(), every_run.end());
    return args;
  }

  // "whole": 8 steps under `first`; "split": the same, stopped after the checkpoint of step 4.
  void train_first(Layout first) {
    ASSERT_EQ(train(launch({"--config", config_file("whole")}, first)), 0) << log_text();
    ASSERT_EQ(train(launch({"--config", config_file("split"), "--stop-at-step", "4"}, first)), 0)
        << log_text();
  }

  // Continues a copy of "split" (its checkpoints and metrics) in run folder `run` under `second`.
  int resume_copy(const std::string& run, Layout second, std::vector<std::string> more = {}) {
    std::filesystem::copy(dir / "split", dir / run, std::filesystem::copy_options::recursive);
    std::vector<std::string> args =
        launch({"--config", config_file(run), "--resume", "auto"}, second);
    args.insert(args.end(), more.begin(), more.end());
    return train(args);
  }

  // Compares run `resumed` with "whole": the data positions of every step (and that the resumed
  // steps were written by `second`'s replicas), the losses after step 4, the weights at step 8.
  // `exact_before`: the steps up to the checkpoint are the same run's, bit for bit (on the CPU);
  // otherwise they count towards worst_loss too.
  Agreement compare(const std::string& resumed, Layout first, Layout second,
                    bool exact_before = true) {
    Agreement out;
    const auto whole = testing::data_positions(dir / "whole");
    const auto split = testing::data_positions(dir / resumed);
    EXPECT_EQ(whole.size(), 8u);
    for (const auto& [step, a] : whole) {
      const auto b = split.find(step);
      const bool same = b != split.end() && b->second.epoch == a.epoch &&
                        b->second.shard == a.shard && b->second.read == a.read;
      out.positions_differing += same ? 0 : 1;
      EXPECT_EQ(a.read, 8 * step) << "8 sequences per step";
      if (b != split.end()) {
        EXPECT_EQ(b->second.world_size, step <= 4 ? first.replicas() : second.replicas())
            << "the loader's world is the replicas, at step " << step;
      }
    }
    const auto loss_whole = testing::metric_by_step(dir / "whole", "train", "loss");
    const auto loss_split = testing::metric_by_step(dir / resumed, "train", "loss");
    EXPECT_EQ(loss_split.size(), 8u);
    for (const auto& [step, loss] : loss_whole) {
      const auto other = loss_split.find(step);
      if (other == loss_split.end()) {
        out.worst_loss = INFINITY;
      } else if (step <= 4 && exact_before) {
        EXPECT_EQ(other->second, loss) << "the same run up to the checkpoint, step " << step;
      } else {
        out.worst_loss = std::max(out.worst_loss, std::abs(other->second - loss) / std::abs(loss));
      }
    }
    out.worst_weight = worst_weight_difference("whole", resumed, 8);
    return out;
  }

  // The resumed run continues the uninterrupted one: same windows, losses and weights within
  // the tolerances, and every optimizer state restored (its step counts are 8).
  void expect_continues(const std::string& resumed, Layout first, Layout second) {
    SCOPED_TRACE(resumed);
    const Agreement a = compare(resumed, first, second);
    EXPECT_EQ(a.positions_differing, 0);
    EXPECT_LT(a.worst_loss, kLossRelTolerance);
    EXPECT_LT(a.worst_weight, kWeightAbsTolerance);
    const auto optimizer = read_tensors(file(resumed, 8, "optimizer.safetensors"));
    for (const auto& [name, tensor] : optimizer) {
      if (name.rfind("step/", 0) != 0) continue;
      EXPECT_EQ(tensor.item<double>(), 8.0) << name;
    }
    std::printf(
        "%d x CP %d -> %d x CP %d at step 4 (%s): loss rel. diff %.3g, weight abs. diff %.3g\n",
        first.replicas(), first.context_parallel, second.replicas(), second.context_parallel,
        resumed.c_str(), a.worst_loss, a.worst_weight);
  }

  void expect_logged(const std::string& text) {
    EXPECT_NE(log_text().find(text), std::string::npos) << text << "\n" << log_text();
  }
};

const Layout kOneRank{1, 1};
const Layout kCp2{2, 2};
const Layout kCp4{4, 4};
const Layout kTwoReplicasOfCp2{4, 2};

// CCA (the tiny config's attention): a CP2 checkpoint on 2 ranks continues on 1 rank, as CP4 on
// 4 ranks and as 2 replicas of CP2 on 4 ranks.
TEST_F(ContextParallelReshardTest, CcaCp2ContinuesOnOneRankAsCp4AndAsTwoReplicasOfCp2) {
  ASSERT_NO_FATAL_FAILURE(train_first(kCp2));
  ASSERT_EQ(resume_copy("to_one", kOneRank), 0) << log_text();
  expect_logged("data: 1 replica × CP 2 → 1 replica × CP 1; epoch 0, shard 0: 32 window(s)");
  expect_logged(
      "sequences: whole on each rank (was split into 4 chunks over the 2 ranks of a "
      "replica)");
  expect_logged("generators: rank 0 restored; the checkpoint's states of rank 1 are not used");
  expect_continues("to_one", kCp2, kOneRank);

  ASSERT_EQ(resume_copy("to_cp4", kCp4), 0) << log_text();
  expect_logged(
      "resharding: the checkpoint was written by 2 ranks with "
      "distributed.context_parallel = 2, this run has 4 ranks with "
      "distributed.context_parallel = 4");
  expect_logged("data: 1 replica × CP 2 → 1 replica × CP 4");
  expect_continues("to_cp4", kCp2, kCp4);

  ASSERT_EQ(resume_copy("to_dp2cp2", kTwoReplicasOfCp2), 0) << log_text();
  expect_logged(
      "data: 1 replica × CP 2 → 2 replicas × CP 2; epoch 0, shard 0: 32 window(s) of "
      "the shard read by 1 replica; 2 replicas continue from there (offset 0, "
      "position 16)");
  expect_continues("to_dp2cp2", kCp2, kTwoReplicasOfCp2);
}

// MHA with document masking: a single-rank checkpoint continues with each sequence split over
// 2 ranks; 2 replicas of CP2 continue on one rank.
TEST_F(ContextParallelReshardTest, MhaWithDocumentsCp1ContinuesAsCp2) {
  testing::write_tiny_manifest(dir / "data", "bos", 3, 5);
  every_run = {"--set", "attention.kind=mha", "--set", "data.document_masking=true"};
  ASSERT_NO_FATAL_FAILURE(train_first(kOneRank));
  ASSERT_EQ(resume_copy("to_cp2", kCp2), 0) << log_text();
  expect_logged("data: 1 replica × CP 1 → 1 replica × CP 2");
  expect_logged("rank 1 did not exist in that run, seeded from (train.seed 5, step 4, rank)");
  expect_continues("to_cp2", kOneRank, kCp2);
}

TEST_F(ContextParallelReshardTest, MhaWithDocumentsTwoReplicasOfCp2ContinueOnOneRank) {
  testing::write_tiny_manifest(dir / "data", "bos", 3, 5);
  every_run = {"--set", "attention.kind=mha", "--set", "data.document_masking=true"};
  ASSERT_NO_FATAL_FAILURE(train_first(kTwoReplicasOfCp2));
  ASSERT_EQ(resume_copy("to_one", kOneRank), 0) << log_text();
  expect_logged(
      "data: 2 replicas × CP 2 → 1 replica × CP 1; epoch 0, shard 0: 32 window(s) of "
      "the shard read by 2 replicas; 1 replica continue from there (offset 0, "
      "position 32)");
  expect_continues("to_one", kTwoReplicasOfCp2, kOneRank);
}

// ZeRO-1 re-partitions the checkpoint's full optimizer state over the new world: CP2 on 2 ranks
// (2 shards) continues as 2 replicas of CP2 (4 shards).
TEST_F(ContextParallelReshardTest, Zero1Cp2ContinuesAsTwoReplicasOfCp2) {
  every_run = {"--set", "distributed.zero1=true"};
  ASSERT_NO_FATAL_FAILURE(train_first(kCp2));
  ASSERT_EQ(resume_copy("to_dp2cp2", kTwoReplicasOfCp2), 0) << log_text();
  expect_logged(
      "optimizer: the checkpoint's full AdamW state, re-partitioned into ZeRO-1 "
      "shards over 4 ranks");
  expect_continues("to_dp2cp2", kCp2, kTwoReplicasOfCp2);
}

// MoE (its selection bias is a buffer of the weights, its statistics are the whole sequences'):
// another split of the same replica continues the run. (Another number of replicas would group
// the step's sequences into other micro-batches, which changes the Switch loss: not compared.)
TEST_F(ContextParallelReshardTest, MoeCp2ContinuesAsCp4AndOnOneRank) {
  for (const char* key :
       {"moe.n_experts=4", "moe.top_k=2", "moe.shared_experts=1", "moe.aux_loss_coef=0.1",
        "moe.z_loss_coef=0.01", "moe.bias_update_rate=0.01"}) {
    every_run.insert(every_run.end(), {"--set", key});
  }
  ASSERT_NO_FATAL_FAILURE(train_first(kCp2));
  ASSERT_EQ(resume_copy("to_cp4", kCp4), 0) << log_text();
  expect_continues("to_cp4", kCp2, kCp4);
  ASSERT_EQ(resume_copy("to_one", kOneRank), 0) << log_text();
  expect_continues("to_one", kCp2, kOneRank);
}

// A mixture's position at every step's checkpoint, without the world size: the sequences read,
// the stage, and for each source its tokens and (epoch, shard, windows read by all replicas).
std::map<int64_t, std::string> mixture_positions(const std::string& run_dir) {
  std::map<int64_t, std::string> out;
  for (const auto& entry : checkpoint_store::list(files::join(run_dir, "checkpoints"))) {
    if (!entry.complete) continue;
    const std::string manifest = files::join(entry.path, "manifest.json");
    const data::MixtureState state =
        data::MixtureState::parse(parse_json(files::read_file(manifest), manifest)
                                      .at("loader_state", manifest)
                                      .as_string("loader_state"));
    std::string text = format("sequences={} stage={}", state.sequences, state.stage);
    for (const data::SourcePosition& p : state.sources) {
      text += format("; {} tokens={} stage_tokens={} epoch={} shard={} read={}", p.name, p.tokens,
                     p.stage_tokens, p.state.epoch, p.state.shard, p.state.shard_windows_read());
    }
    out[entry.step] = text;
  }
  return out;
}

// A two-source mixture with a second stage from step 4 (tiny_mixture_overrides), resumed at the
// boundary: CP 2 on 2 ranks continues as 2 replicas of CP 2. Every source's position and the
// stage agree at every step; losses and weights within the tolerances.
TEST_F(ContextParallelReshardTest, MixtureCp2ContinuesAsTwoReplicasOfCp2AtTheStageBoundary) {
  const std::string web = testing::write_tiny_dataset(dir / "web", 11);
  const std::string code = testing::write_tiny_dataset(dir / "code", 31);
  for (const std::string& set : testing::tiny_mixture_overrides(web, code)) {
    every_run.insert(every_run.end(), {"--set", set});
  }
  ASSERT_NO_FATAL_FAILURE(train_first(kCp2));
  ASSERT_EQ(resume_copy("to_dp2cp2", kTwoReplicasOfCp2), 0) << log_text();
  expect_logged("data source 'code': 1 replica × CP 2 → 2 replicas × CP 2; epoch 0");
  const auto whole = mixture_positions(dir / "whole");
  const auto resumed = mixture_positions(dir / "to_dp2cp2");
  ASSERT_EQ(whole.size(), 8u);
  EXPECT_EQ(resumed, whole);
  EXPECT_NE(whole.at(8).find("sequences=64 stage=1"), std::string::npos) << whole.at(8);
  const auto loss_whole = testing::metric_by_step(dir / "whole", "train", "loss");
  const auto loss_resumed = testing::metric_by_step(dir / "to_dp2cp2", "train", "loss");
  ASSERT_EQ(loss_resumed.size(), 8u);
  for (const auto& [step, loss] : loss_whole) {
    EXPECT_NEAR(loss_resumed.at(step), loss, kLossRelTolerance * loss) << "step " << step;
  }
  EXPECT_LT(worst_weight_difference("whole", "to_dp2cp2", 8), kWeightAbsTolerance);
}

// Another global batch is refused naming both layouts, the keys and a fix. Asked for, the run
// continues from another data position, and the comparison above must see that: the control
// that shows it can fail.
TEST_F(ContextParallelReshardTest, AnotherGlobalBatchIsRefusedAndAnotherDataPositionIsDetected) {
  ASSERT_NO_FATAL_FAILURE(train_first(kCp2));
  // 2 replicas of CP2 with grad_accum 2: 16 sequences per step instead of 8.
  EXPECT_NE(resume_copy("refused", kTwoReplicasOfCp2, {"--set", "train.grad_accum=2"}), 0);
  for (const char* expected :
       {"with 2 replicas × CP 2 (4 ranks): it was written by 1 replica × CP 2 (2 ranks), and the "
        "global batch changes from 8 sequences per step (train.micro_batch_size 4 × "
        "train.grad_accum 2 × 1 replica) to 16 (train.micro_batch_size 4 × train.grad_accum 2 × "
        "2 replicas)",
        "distributed.context_parallel: 2 / 2 before, 4 / 2 now",
        "keep it with --set train.grad_accum=1", "--set train.global_batch_size=16"}) {
    expect_logged(expected);
  }
  // Asked for: 4 sequences per step on one rank, so every later step reads other windows.
  ASSERT_EQ(resume_copy("half", kOneRank,
                        {"--set", "train.grad_accum=1", "--set", "train.global_batch_size=4"}),
            0)
      << log_text();
  expect_logged("as train.global_batch_size = 4 asks");
  const Agreement wrong = compare("half", kCp2, kOneRank);
  EXPECT_EQ(wrong.positions_differing, 4) << "steps 5-8 read other windows";
  EXPECT_GT(wrong.worst_loss, 10 * kLossRelTolerance);
  EXPECT_EQ(testing::data_positions(dir / "half").at(8).read, 32 + 4 * 4);
}

// On GPUs (NCCL groups, fp32): CP 2 on 2 GPUs continues on 1 GPU and back on 2 as CP 2 from a
// 1-GPU checkpoint, reading the same windows, with losses within the GPU tests' 1e-4 relative of
// the uninterrupted run (the kernels sum in other orders than the CPU's, and may use TF32).
// Skips without two GPUs.
TEST_F(ContextParallelReshardTest, TwoGpusCp2ContinuesOnOneGpuAndOneGpuAsCp2) {
  if (torch::cuda::device_count() < 2) GTEST_SKIP() << "needs 2 CUDA devices";
  every_run = {"--set", "train.device=cuda", "--set", "train.precision=fp32"};
  for (const auto& [first, second] : {std::pair{kCp2, kOneRank}, std::pair{kOneRank, kCp2}}) {
    for (const char* run : {"whole", "split", "resumed"}) {
      std::filesystem::remove_all(dir / run);
    }
    ASSERT_NO_FATAL_FAILURE(train_first(first));
    ASSERT_EQ(resume_copy("resumed", second), 0) << log_text();
    const Agreement a = compare("resumed", first, second, /*exact_before=*/false);
    EXPECT_EQ(a.positions_differing, 0);
    EXPECT_LT(a.worst_loss, 1e-4);
    std::printf("GPU %d x CP %d -> %d x CP %d: loss rel. diff %.3g, weight abs. diff %.3g\n",
                first.replicas(), first.context_parallel, second.replicas(),
                second.context_parallel, a.worst_loss, a.worst_weight);
  }
  EXPECT_NE(log_text().find("nccl"), std::string::npos) << log_text();
}

}  // namespace
}  // namespace cca
