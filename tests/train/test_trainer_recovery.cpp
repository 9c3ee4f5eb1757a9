// Recovering instead of refusing: resume from the newest intact checkpoint past a corrupt one,
// a run of skipped steps that stops with a diagnosis, and failed checkpoint writes survived.
#include <gtest/gtest.h>

#include <fstream>
#include <limits>

#include "checkpoint/checkpoint_store.h"
#include "ops/device.h"
#include "train/checkpoint.h"
#include "train/train_test_util.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/files.h"

namespace cca {
namespace {

using testing::ScratchDir;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// 4 bytes of 0xff in the middle of the file, as the reproduction did.
void scribble(const std::string& path) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(static_cast<std::streamoff>(files::file_size(path) / 2));
  for (int i = 0; i < 4; ++i) file.put(static_cast<char>(0xff));
}

std::vector<std::string> set_aside_in(const std::string& root) {
  std::vector<std::string> aside;
  for (const std::string& name : files::list_directory(root)) {
    if (name.rfind(".corrupt-", 0) == 0) aside.push_back(name);
  }
  return aside;
}

// Run on the CPU and, where one is visible, on a GPU: the skip streak lives on the device there.
class RecoveryTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "cuda" && !cuda_available()) GTEST_SKIP() << "no CUDA device visible";
  }
  ScratchDir dir;
  std::string data = testing::write_tiny_dataset(dir / "data");
  std::string root = dir / "run/checkpoints";
  LoadedConfig config(std::vector<std::string> sets = {}) {
    sets.push_back("train.device=" + GetParam());
    return testing::tiny_config(data, dir / "run", sets);
  }
  void TearDown() override { checkpoint_store::inject_commit_failures(0); }
};

TEST_P(RecoveryTest, ResumeAutoFallsBackPastACorruptCheckpointAndKeepsIt) {
  Trainer(config({"checkpoint.every=2"}), testing::quiet_options("", 4)).run();
  const std::string newest = root + "/step_00000004";
  scribble(files::join(newest, "model.safetensors"));

  Trainer resumed(config({"checkpoint.every=2"}), testing::quiet_options("auto"));
  EXPECT_EQ(resumed.progress().step, 2) << "the newest intact checkpoint is step 2";
  const auto aside = set_aside_in(root);
  ASSERT_EQ(aside.size(), 1u);
  EXPECT_EQ(aside[0].rfind(".corrupt-step_00000004-", 0), 0u) << aside[0];
  EXPECT_FALSE(files::exists(newest));
  EXPECT_EQ(resumed.run().final_step, 8);
  EXPECT_EQ(set_aside_in(root).size(), 1u) << "never deleted, not even by pruning";
}

TEST_P(RecoveryTest, AnExplicitResumeOfACorruptCheckpointNamesTheFile) {
  Trainer(config(), testing::quiet_options("", 4)).run();
  const std::string newest = root + "/step_00000004";
  scribble(files::join(newest, "optimizer.safetensors"));
  const std::string message =
      testing::error_of([&] { Trainer(config(), testing::quiet_options(newest)); });
  EXPECT_TRUE(contains(message, "--resume '" + newest + "': the checkpoint is corrupt")) << message;
  EXPECT_TRUE(contains(message, "step_00000004/optimizer.safetensors: content checksum"))
      << message;
  EXPECT_TRUE(checkpoint_store::is_complete(newest)) << "an explicit path is not moved aside";
}

void poison(Trainer& trainer) {
  at::NoGradGuard no_grad;
  trainer.model().embedding.fill_(std::numeric_limits<float>::quiet_NaN());
}

TEST_P(RecoveryTest, StepsSkippedInARowStopTheRunWithADiagnosis) {
  Trainer trainer(
      config({"train.nonfinite=skip", "train.max_consecutive_skips=3", "checkpoint.every=1"}),
      testing::quiet_options());
  poison(trainer);
  const std::string message = testing::error_of([&] { trainer.run(); });
  EXPECT_TRUE(contains(message, "steps 1 to 3: 3 optimizer steps in a row were skipped"))
      << message;
  EXPECT_TRUE(contains(message, "train.max_consecutive_skips: 3")) << message;
  EXPECT_TRUE(contains(message, "the loss was NaN")) << message;
  EXPECT_TRUE(contains(message, "non-finite values (1 tensor(s), first embedding)")) << message;
  EXPECT_EQ(trainer.progress().step, 3) << "stops at the step that completes the streak";
  EXPECT_EQ(checkpoint_store::list(root).size(), 2u) << "nothing written after the streak";
}

TEST_P(RecoveryTest, ZeroMaxConsecutiveSkipsNeverStops) {
  Trainer trainer(config({"train.nonfinite=skip", "train.max_consecutive_skips=0"}),
                  testing::quiet_options());
  poison(trainer);
  EXPECT_EQ(trainer.run().final_step, 8);
  EXPECT_EQ(trainer.progress().skipped_steps, 8);
}

TEST_P(RecoveryTest, AFailedCheckpointWriteIsSurvivedAndRetriedAtTheNextInterval) {
  checkpoint_store::inject_commit_failures(1);
  Trainer trainer(config({"checkpoint.every=2"}), testing::quiet_options());
  const TrainResult result = trainer.run();
  EXPECT_EQ(result.final_step, 8);
  EXPECT_EQ(result.last_checkpoint, root + "/step_00000008");
  std::vector<int64_t> steps;
  for (const auto& entry : checkpoint_store::list(root)) steps.push_back(entry.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{4, 6, 8})) << "step 2's write failed, the rest did not";
  EXPECT_EQ(files::list_directory(root).size(), 3u) << "no staging folder left behind";
}

TEST_P(RecoveryTest, TheFinalCheckpointIsRetriedAtOnce) {
  checkpoint_store::inject_commit_failures(1);
  Trainer trainer(config({"checkpoint.every=0", "train.steps=3"}), testing::quiet_options());
  EXPECT_EQ(trainer.run().last_checkpoint, root + "/step_00000003");
}

TEST_P(RecoveryTest, FailuresInARowStopTheRunAndNameTheNewestIntactCheckpoint) {
  std::string message;
  {
    Trainer first(config({"checkpoint.every=1", "train.steps=8"}), testing::quiet_options("", 1));
    first.run();
  }
  Trainer resumed(config({"checkpoint.every=1", "checkpoint.max_write_failures=2"}),
                  testing::quiet_options("auto"));
  checkpoint_store::inject_commit_failures(100);
  message = testing::error_of([&] { resumed.run(); });
  EXPECT_TRUE(contains(message, "checkpoint of step 3 not written: 2 write(s) failed in a row"))
      << message;
  EXPECT_TRUE(contains(message, "checkpoint.max_write_failures: 2")) << message;
  EXPECT_TRUE(contains(message, "No space left on device")) << message;
  EXPECT_TRUE(contains(message, "newest intact checkpoint: " + root + "/step_00000001")) << message;
  EXPECT_TRUE(checkpoint_store::is_complete(root + "/step_00000001"));
}

INSTANTIATE_TEST_SUITE_P(Cpu, RecoveryTest, ::testing::Values("cpu"));
INSTANTIATE_TEST_SUITE_P(Cuda, RecoveryTest, ::testing::Values("cuda"));

}  // namespace
}  // namespace cca
