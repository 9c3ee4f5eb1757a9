// The trainer in-process on a tiny CPU model: exact resume, resume checks, non-finite policies,
// hostile checkpoints and export.
#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <map>

#include "checkpoint/checkpoint_store.h"
#include "checkpoint/safetensors.h"
#include "ops/device.h"
#include "testing/process.h"
#include "train/checkpoint.h"
#include "train/train_test_util.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/json.h"

namespace cca {
namespace {

using testing::ScratchDir;

// step -> loss of every "train" record in a metrics.jsonl.
std::map<int64_t, double> logged_losses(const std::string& run_dir) {
  return testing::metric_by_step(run_dir, "train", "loss");
}

class TrainerTest : public ::testing::Test {
 protected:
  ScratchDir dir;
  std::string data = testing::write_tiny_dataset(dir / "data");
  LoadedConfig config(const std::string& run, const std::vector<std::string>& sets = {}) {
    return testing::tiny_config(data, dir / run, sets);
  }
};

TEST_F(TrainerTest, ResumedRunMatchesAnUninterruptedOneBitForBit) {
  Trainer whole(config("whole"), testing::quiet_options());
  const TrainResult whole_result = whole.run();
  EXPECT_EQ(whole_result.final_step, 8);
  ASSERT_TRUE(whole_result.final_val_loss.has_value());
  const auto expected = testing::snapshot(whole);

  {
    Trainer first_half(config("split"), testing::quiet_options("", 4));
    const TrainResult result = first_half.run();
    EXPECT_TRUE(result.stopped_early);
    EXPECT_EQ(result.final_step, 4);
  }
  Trainer second_half(config("split"), testing::quiet_options("auto"));
  EXPECT_EQ(second_half.progress().step, 4);
  EXPECT_EQ(second_half.run().final_step, 8);
  for (const auto& [name, tensor] : testing::snapshot(second_half)) {
    EXPECT_TRUE(at::equal(tensor, expected.at(name))) << name << " differs after resume";
  }
  EXPECT_EQ(load_config(dir / "whole/config.yaml").config.model.d_model, 64)
      << "the run folder keeps the resolved config";
  const auto whole_losses = logged_losses(dir / "whole");
  EXPECT_EQ(whole_losses.size(), 8u);
  EXPECT_EQ(logged_losses(dir / "split"), whole_losses);
  EXPECT_LT(whole_losses.at(8), whole_losses.at(1));
}

// MHA with CCA's convs and value shift (attention.mha.*): the conv weights are checkpointed and
// restored like every other parameter, so the run resumes bit for bit (with activation
// checkpointing recomputing the convs in backward).
TEST_F(TrainerTest, MhaWithConvsResumesBitForBit) {
  const std::vector<std::string> convs = {"attention.kind=mha", "attention.mha.convs=2",
                                          "attention.mha.value_shift=true",
                                          "train.activation_checkpointing=true"};
  Trainer whole(config("whole", convs), testing::quiet_options());
  EXPECT_EQ(whole.run().final_step, 8);
  const auto expected = testing::snapshot(whole);
  EXPECT_EQ(expected.count("blocks.0.attention.conv_qk.1.weight"), 1u);
  { Trainer(config("split", convs), testing::quiet_options("", 4)).run(); }
  Trainer second_half(config("split", convs), testing::quiet_options("auto"));
  EXPECT_EQ(second_half.progress().step, 4);
  second_half.run();
  for (const auto& [name, tensor] : testing::snapshot(second_half)) {
    EXPECT_TRUE(at::equal(tensor, expected.at(name))) << name << " differs after resume";
  }
}

// Muon's momentum buffers are in the checkpoint beside AdamW's moments for the rest, so a Muon
// run resumes bit for bit too, and it learns.
TEST_F(TrainerTest, MuonRunResumesBitForBit) {
  const std::vector<std::string> muon = {"optim.kind=muon", "optim.lr=1e-2"};
  Trainer whole(config("whole", muon), testing::quiet_options());
  EXPECT_EQ(whole.run().final_step, 8);
  const auto expected = testing::snapshot(whole);
  Trainer(config("split", muon), testing::quiet_options("", 4)).run();
  Trainer second_half(config("split", muon), testing::quiet_options("auto"));
  EXPECT_EQ(second_half.run().final_step, 8);
  for (const auto& [name, tensor] : testing::snapshot(second_half)) {
    EXPECT_TRUE(at::equal(tensor, expected.at(name))) << name << " differs after resume";
  }
  const std::string state = "checkpoints/step_00000008/optimizer.safetensors";
  const std::string whole_state = files::read_file(files::join(dir / "whole", state));
  EXPECT_TRUE(whole_state == files::read_file(files::join(dir / "split", state)));
  EXPECT_NE(whole_state.find("muon_momentum/blocks.0.attention.linear_q.weight"),
            std::string::npos);
  EXPECT_NE(whole_state.find("exp_avg/embedding"), std::string::npos);
  const auto losses = logged_losses(dir / "whole");
  EXPECT_EQ(logged_losses(dir / "split"), losses);
  EXPECT_LT(losses.at(8), losses.at(1));
}

// Each optimizer's state means nothing to the other: resuming with another optim.kind is refused
// with the way out, while a checkpoint from before optim.kind existed (no such key: adamw)
// continues as adamw.
TEST_F(TrainerTest, ResumeWithAnotherOptimizerIsRefused) {
  Trainer(config("run"), testing::quiet_options("", 4)).run();
  const std::string message = testing::error_of(
      [&] { Trainer(config("run", {"optim.kind=muon"}), testing::quiet_options("auto")); });
  EXPECT_NE(message.find("the checkpoint was trained with optim.kind adamw, the config asks for "
                         "muon; resume with optim.kind: adamw"),
            std::string::npos)
      << message;
  // The checkpoint's config.yaml as a build before optim.kind wrote it: without the line.
  std::string saved =
      files::read_file(files::join(dir / "run", "checkpoints/step_00000004/config.yaml"));
  const size_t line = saved.find("  kind: adamw\n");
  ASSERT_NE(line, std::string::npos) << saved;
  saved.erase(line, std::string("  kind: adamw\n").size());
  const Config before_the_key = load_config_text(saved, "old-config.yaml", {}).config;
  EXPECT_EQ(before_the_key.optim.kind, "adamw");
  EXPECT_TRUE(compare_configs_for_resume(before_the_key, config("run").config).empty());
}

// Values a variant asks to log (Attention::logged_values) reach metrics.jsonl as min/mean/max:
// CCA's key temperature starts at exp(0) = 1 and moves; MHA logs none.
TEST_F(TrainerTest, TheVariantsLoggedValuesReachTheMetrics) {
  Trainer cca(config("cca"), testing::quiet_options());
  cca.run();
  const auto mean = testing::metric_by_step(dir / "cca", "train", "cca_temp_mean");
  const auto low = testing::metric_by_step(dir / "cca", "train", "cca_temp_min");
  const auto high = testing::metric_by_step(dir / "cca", "train", "cca_temp_max");
  ASSERT_EQ(mean.size(), 8u);
  EXPECT_NEAR(mean.at(1), 1.0, 0.05);
  EXPECT_LE(low.at(8), mean.at(8));
  EXPECT_LE(mean.at(8), high.at(8));
  EXPECT_GT(high.at(8) - low.at(8), 0.0) << "the temperatures train";
  Trainer mha(config("mha", {"attention.kind=mha"}), testing::quiet_options());
  mha.run();
  const std::string mha_metrics = files::read_file(files::join(dir / "mha", "metrics.jsonl"));
  EXPECT_NE(mha_metrics.find("\"loss\""), std::string::npos);
  EXPECT_EQ(mha_metrics.find("cca_temp"), std::string::npos);
}

TEST_F(TrainerTest, RefusesToStartAFreshRunOverAnExistingOne) {
  Trainer(config("run"), testing::quiet_options("", 4)).run();
  const std::string message =
      testing::error_of([&] { Trainer(config("run"), testing::quiet_options()); });
  EXPECT_NE(message.find("--resume auto"), std::string::npos) << message;
}

TEST_F(TrainerTest, ResumeWithADifferentModelListsEveryDifference) {
  Trainer(config("run"), testing::quiet_options("", 4)).run();
  const std::string message = testing::error_of([&] {
    Trainer(config("run", {"model.d_model=96", "model.n_layers=3"}),
            testing::quiet_options("auto"));
  });
  EXPECT_NE(message.find("model.d_model: 64 -> 96"), std::string::npos) << message;
  EXPECT_NE(message.find("model.n_layers: 2 -> 3"), std::string::npos) << message;
}

TEST_F(TrainerTest, ScheduleAndStepChangesAreAllowedAndReported) {
  Trainer(config("run"), testing::quiet_options("", 4)).run();
  const std::vector<std::string> changes = compare_configs_for_resume(
      config("run").config, config("run", {"schedule.kind=constant", "train.steps=10"}).config);
  EXPECT_EQ(changes, (std::vector<std::string>{"schedule.kind: cosine -> constant",
                                               "train.steps: 8 -> 10"}));
  Trainer resumed(config("run", {"schedule.kind=constant", "train.steps=10"}),
                  testing::quiet_options("auto"));
  EXPECT_EQ(resumed.run().final_step, 10);
}

void poison_embedding(Trainer& trainer) {
  at::NoGradGuard no_grad;
  trainer.model().embedding.fill_(std::numeric_limits<float>::quiet_NaN());
}

TEST_F(TrainerTest, HaltStopsAtTheFirstNonFiniteStepAndWritesNoCheckpoint) {
  Trainer trainer(config("run", {"train.nonfinite=halt"}), testing::quiet_options());
  poison_embedding(trainer);
  const std::string message = testing::error_of([&] { trainer.run(); });
  EXPECT_NE(message.find("non-finite loss or gradient at step 1 (rank 0)"), std::string::npos)
      << message;
  EXPECT_TRUE(checkpoint_store::list(dir / "run/checkpoints").empty());
}

TEST_F(TrainerTest, SkipDropsNonFiniteStepsAndCountsThem) {
  Trainer trainer(config("run", {"train.nonfinite=skip", "train.steps=3"}),
                  testing::quiet_options());
  poison_embedding(trainer);
  const auto before = testing::snapshot(trainer);
  trainer.run();
  EXPECT_EQ(trainer.progress().skipped_steps, 3);
  for (const auto& [name, tensor] : testing::snapshot(trainer)) {
    if (name == "embedding") continue;
    EXPECT_TRUE(at::equal(tensor, before.at(name))) << name;
  }
}

TEST_F(TrainerTest, CudaGraphsOnACpuRunAreAClearError) {
  // The tiny config trains on the CPU: the config check names both keys.
  const std::string on_cpu = testing::error_of(
      [&] { Trainer(config("cpu", {"train.cuda_graphs=true"}), testing::quiet_options()); });
  EXPECT_NE(on_cpu.find("train.cuda_graphs needs CUDA"), std::string::npos) << on_cpu;
  if (cuda_available()) return;  // below: `auto` resolving to the CPU, known only at start
  const std::string automatic = testing::error_of([&] {
    Trainer(config("auto", {"train.cuda_graphs=true", "train.device=auto"}),
            testing::quiet_options());
  });
  EXPECT_NE(automatic.find("train.cuda_graphs: true needs a CUDA device"), std::string::npos)
      << automatic;
}

class HostileCheckpointTest : public TrainerTest {
 protected:
  void SetUp() override {
    Trainer(config("run"), testing::quiet_options("", 4)).run();
    checkpoint = dir / "run/checkpoints/step_00000004";
    model_file = files::join(checkpoint, "model.safetensors");
    bytes = files::read_file(model_file);
  }
  // The checksums in DONE would catch every change below before anything is parsed
  // (test_trainer_recovery.cpp); DONE is rewritten as a checkpoint from before checksums had it,
  // so these reach the readers' own checks.
  std::string resume_error(const std::string& new_bytes) {
    std::ofstream(model_file, std::ios::binary | std::ios::trunc) << new_bytes;
    std::ofstream(files::join(checkpoint, "DONE"), std::ios::trunc) << "{\"step\": 4}\n";
    return testing::error_of([&] { Trainer(config("run"), testing::quiet_options("auto")); });
  }
  std::string checkpoint, model_file, bytes;
};

TEST_F(HostileCheckpointTest, TruncatedWeights) {
  const std::string message = resume_error(bytes.substr(0, bytes.size() / 2));
  EXPECT_NE(message.find("truncated or replaced"), std::string::npos) << message;
}

TEST_F(HostileCheckpointTest, HeaderLengthPastTheEnd) {
  std::string bad = bytes;
  for (int i = 0; i < 8; ++i) bad[i] = static_cast<char>(0x7f);
  const std::string message = resume_error(bad);
  EXPECT_NE(message.find("model.safetensors"), std::string::npos) << message;
  EXPECT_NE(message.find("header"), std::string::npos) << message;
}

TEST_F(HostileCheckpointTest, WrongShapeWithTheSameBytes) {
  std::string bad = bytes;
  const size_t at = bad.find("[128, 64]");
  ASSERT_NE(at, std::string::npos) << bad.substr(8, 200);
  bad.replace(at, 9, "[64, 128]");
  const std::string message = resume_error(bad);
  EXPECT_NE(message.find("has shape [64, 128], the model expects [128, 64]"), std::string::npos)
      << message;
}

TEST_F(HostileCheckpointTest, TornNewestCheckpointIsSkipped) {
  files::remove_file(files::join(checkpoint, "DONE"));
  Trainer resumed(config("run"), testing::quiet_options("auto"));
  EXPECT_EQ(resumed.progress().step, 0);  // nothing complete left: a fresh start, with a warning
}

TEST_F(TrainerTest, ExportWritesBf16WeightsAndTheConfig) {
  Trainer(config("run"), testing::quiet_options("", 4)).run();
  const std::string out = dir / "export";
  const int64_t count = export_weights(dir / "run/checkpoints/step_00000004", out, "bf16");
  const safetensors::File file = safetensors::File::open(files::join(out, "model.safetensors"));
  EXPECT_EQ(static_cast<int64_t>(file.tensors().size()), count);
  EXPECT_EQ(file.at("embedding").dtype, "BF16");
  EXPECT_EQ(file.metadata().at("step"), "4");
  EXPECT_EQ(load_config(files::join(out, "config.yaml")).config.model.d_model, 64);
}

}  // namespace
}  // namespace cca
