// Continuing a run at a longer context with attention.rope_scaling: a warm start (init.from) at 4×
// the sequence length, and a resume that switches the scaling on (the scaling keys change no
// parameter), both with the tiny CPU model.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "train/train_test_util.h"
#include "train/trainer.h"

namespace cca {
namespace {

using testing::ScratchDir;

class ContextExtension : public ::testing::Test {
 protected:
  ScratchDir dir;
  std::string data = testing::write_tiny_dataset(dir / "data");
  LoadedConfig config(const std::string& run, const std::vector<std::string>& sets = {}) {
    return testing::tiny_config(data, dir / run, sets);
  }
  // The tiny model trained at 32 tokens, extended 4× by YaRN.
  std::vector<std::string> extended(const std::vector<std::string>& more) const {
    std::vector<std::string> sets = {"attention.rope_scaling=yarn",
                                     "attention.rope_scaling_factor=4",
                                     "attention.rope_original_max_seq_len=32"};
    sets.insert(sets.end(), more.begin(), more.end());
    return sets;
  }
};

TEST_F(ContextExtension, WarmStartAtFourTimesTheLengthTrainsFromTheSameWeights) {
  Trainer source(config("short", {"train.steps=20", "train.eval_every=20"}),
                 testing::quiet_options());
  const TrainResult trained = source.run();
  ASSERT_TRUE(trained.final_val_loss.has_value());
  const std::string from = "init.from=" + (dir / "short");

  // Evaluated at the trained length with the scaling on: nearly the source's validation loss.
  Trainer same_length(config("eval", extended({from, "train.steps=0"})), testing::quiet_options());
  const TrainResult evaluated = same_length.run();
  ASSERT_TRUE(evaluated.final_val_loss.has_value());
  EXPECT_NEAR(*evaluated.final_val_loss, *trained.final_val_loss, 0.02);

  // Trained on at 128 tokens (model.max_seq_len too): finite, and still far from chance.
  Trainer longer(
      config("long", extended({from, "train.seq_len=128", "model.max_seq_len=128",
                               "train.micro_batch_size=1", "train.steps=2", "train.eval_every=2"})),
      testing::quiet_options());
  const TrainResult result = longer.run();
  EXPECT_EQ(result.final_step, 2);
  ASSERT_TRUE(result.final_val_loss.has_value());
  EXPECT_TRUE(std::isfinite(*result.final_val_loss));
  EXPECT_LT(*result.final_val_loss, *trained.final_val_loss + 0.5);
}

TEST_F(ContextExtension, ResumeAcceptsTheScalingKeysAsRuntimeChanges) {
  Trainer(config("run"), testing::quiet_options("", 4)).run();
  Trainer resumed(config("run", extended({"train.steps=10"})), testing::quiet_options("auto"));
  const TrainResult result = resumed.run();
  EXPECT_EQ(result.final_step, 10);
  ASSERT_TRUE(result.final_val_loss.has_value());
  EXPECT_TRUE(std::isfinite(*result.final_val_loss));
}

}  // namespace
}  // namespace cca
