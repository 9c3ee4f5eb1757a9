// The trainer on a two-source mixture with two stages and two named validation sets (the tiny
// model, in process): exact resume in the middle of a stage and exactly at the stage boundary,
// tokens per source and the stage in metrics.jsonl, per-set validation losses, and the refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "testing/process.h"
#include "train/checkpoint.h"
#include "train/train_test_util.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/json.h"

namespace cca {
namespace {

using testing::ScratchDir;

// step -> "stage" of every train record.
std::map<int64_t, std::string> stages_by_step(const std::string& run_dir) {
  std::map<int64_t, std::string> out;
  const std::string text = files::read_file(files::join(run_dir, "metrics.jsonl"));
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\n', start);
    const Json record = parse_json(text.substr(start, end - start), "metrics.jsonl");
    if (record.at("kind", "r").as_string("kind") == "train") {
      out[record.at("step", "r").as_int("step")] = record.at("stage", "r").as_string("stage");
    }
    start = end + 1;
  }
  return out;
}

class MixtureTrainerTest : public ::testing::Test {
 protected:
  ScratchDir dir;
  std::string web = testing::write_tiny_dataset(dir / "web", 11);
  std::string code = testing::write_tiny_dataset(dir / "code", 31);
  std::vector<std::string> stages;  // overrides of tiny_mixture_overrides' stages
  LoadedConfig config(const std::string& run, std::vector<std::string> sets = {}) {
    std::vector<std::string> all = testing::tiny_mixture_overrides(web, code);
    all.insert(all.end(), stages.begin(), stages.end());
    all.insert(all.end(), sets.begin(), sets.end());
    return testing::tiny_config(web, dir / run, all);
  }
  // `focus_seq_len`: the sequence length of the second stage (from step 5).
  void expect_resume_matches(const std::string& run, int64_t stop_at,
                             const std::map<std::string, at::Tensor>& expected,
                             int64_t focus_seq_len = 32) {
    Trainer(config(run), testing::quiet_options("", stop_at)).run();
    Trainer second(config(run), testing::quiet_options("auto"));
    EXPECT_EQ(second.progress().step, stop_at);
    ASSERT_TRUE(second.progress().mixture.has_value());
    // The stage of the last sequence read: the boundary step 4 still ends stage 0.
    EXPECT_EQ(second.progress().mixture->stage, stop_at <= 4 ? 0 : 1);
    // Every source's window order is of the length of the stage that read last.
    for (const data::SourcePosition& source : second.progress().mixture->sources) {
      EXPECT_EQ(source.state.seq_len, stop_at <= 4 ? 32 : focus_seq_len) << source.name;
    }
    second.run();
    for (const auto& [name, tensor] : testing::snapshot(second)) {
      EXPECT_TRUE(at::equal(tensor, expected.at(name)))
          << name << " differs after resuming at step " << stop_at;
    }
    EXPECT_EQ(testing::metric_by_step(dir / run, "train", "loss"),
              testing::metric_by_step(dir / "whole", "train", "loss"));
    EXPECT_EQ(testing::metric_by_step(dir / run, "train", "tokens/code"),
              testing::metric_by_step(dir / "whole", "train", "tokens/code"));
  }
};

TEST_F(MixtureTrainerTest, ResumeMidStageAndAtTheStageBoundaryIsBitExact) {
  Trainer whole(config("whole"), testing::quiet_options());
  const TrainResult result = whole.run();
  const auto expected = testing::snapshot(whole);
  // 8 sequences of 32 tokens a step: steps 1-4 draw web:code 3:1, steps 5-8 1:3.
  const auto web_tokens = testing::metric_by_step(dir / "whole", "train", "tokens/web");
  const auto code_tokens = testing::metric_by_step(dir / "whole", "train", "tokens/code");
  EXPECT_EQ(web_tokens.at(4), 24 * 32);
  EXPECT_EQ(code_tokens.at(4), 8 * 32);
  EXPECT_EQ(web_tokens.at(8), 32 * 32);
  EXPECT_EQ(code_tokens.at(8), 32 * 32);
  ASSERT_EQ(result.source_tokens.size(), 2u);
  EXPECT_EQ(result.source_tokens[1].second, 32 * 32);
  const auto stages = stages_by_step(dir / "whole");
  EXPECT_EQ(stages.at(4), "general");
  EXPECT_EQ(stages.at(5), "focus");
  // Each eval reports both sets and their token-weighted mean.
  const auto web_val = testing::metric_by_step(dir / "whole", "eval", "val_loss/web");
  const auto code_val = testing::metric_by_step(dir / "whole", "eval", "val_loss/code");
  const auto mean_val = testing::metric_by_step(dir / "whole", "eval", "val_loss");
  ASSERT_EQ(web_val.size(), 2u);
  for (const auto& [step, mean] : mean_val) {
    EXPECT_NEAR(mean, (web_val.at(step) + code_val.at(step)) / 2, 1e-9) << step;  // equal sizes
  }
  EXPECT_NE(web_val.at(8), code_val.at(8));
  expect_resume_matches("boundary", 4, expected);
  expect_resume_matches("mid", 6, expected);
}

// The focus stage at twice the sequence length, its micro-batch kept, so twice the tokens a step.
TEST_F(MixtureTrainerTest, StageWithItsOwnSeqLenTrainsAndResumesBitExactAcrossTheSwitch) {
  stages = {
      "data.stages=[{name: general, start_step: 0, weights: {web: 3, code: 1}}, {name: focus, "
      "start_step: 4, weights: {web: 1, code: 3}, seq_len: 64, tokens_per_step: scale}]"};
  Trainer whole(config("whole"), testing::quiet_options());
  const TrainResult result = whole.run();
  EXPECT_EQ(result.final_step, 8);
  ASSERT_TRUE(result.final_val_loss.has_value());
  EXPECT_TRUE(std::isfinite(*result.final_val_loss));
  const auto expected = testing::snapshot(whole);
  const auto seq_lens = testing::metric_by_step(dir / "whole", "train", "seq_len");
  const auto per_step = testing::metric_by_step(dir / "whole", "train", "tokens_per_step");
  const auto seen = testing::metric_by_step(dir / "whole", "train", "tokens_seen");
  EXPECT_EQ(seq_lens.at(4), 32);
  EXPECT_EQ(seq_lens.at(5), 64);
  EXPECT_EQ(per_step.at(4), 8 * 32);  // 4 sequences x 2 micro-batches
  EXPECT_EQ(per_step.at(5), 8 * 64);
  EXPECT_EQ(seen.at(8), 4 * 8 * 32 + 4 * 8 * 64);
  // Sources count what they gave: all tokens seen, the focus stage's drawn 1:3.
  const auto web_tokens = testing::metric_by_step(dir / "whole", "train", "tokens/web");
  const auto code_tokens = testing::metric_by_step(dir / "whole", "train", "tokens/code");
  EXPECT_EQ(web_tokens.at(8) + code_tokens.at(8), seen.at(8));
  EXPECT_EQ(code_tokens.at(8) - code_tokens.at(4), 24 * 64);
  EXPECT_EQ(stages_by_step(dir / "whole").at(5), "focus");
  expect_resume_matches("boundary", 4, expected, 64);
  expect_resume_matches("mid", 6, expected, 64);
}

TEST_F(MixtureTrainerTest, OneDatasetCheckpointDoesNotResumeAsAMixture) {
  Trainer(testing::tiny_config(web, dir / "run"), testing::quiet_options("", 4)).run();
  const std::string launch_config = files::read_file(dir / "run/config.yaml");
  const std::string error =
      testing::error_of([&] { Trainer(config("run"), testing::quiet_options("auto")); });
  // The refused launch leaves the run folder as it was.
  EXPECT_EQ(files::read_file(dir / "run/config.yaml"), launch_config);
  EXPECT_NE(error.find("is for one dataset, but data.train is now a mixture"), std::string::npos)
      << error;
}

TEST_F(MixtureTrainerTest, SourcesWithAnotherVocabularyAreRefusedNamingBoth) {
  // A shard header records its vocabulary: 128 for web, 256 for the other one.
  const std::string other = dir / "other";
  files::make_directories(other);
  data::ShardWriter writer(files::join(other, "train_000000.bin"), data::kShardVersionU16, 256);
  writer.append(testing::chain_tokens(20000, 3));
  writer.finish();
  files::make_directories(dir / "webv");
  data::ShardWriter web_writer(files::join(dir / "webv", "train_000000.bin"),
                               data::kShardVersionU16, 128);
  web_writer.append(testing::chain_tokens(20000, 4));
  web_writer.finish();
  const std::string error = testing::error_of([&] {
    Trainer(config("vocab", {"data.train=[{name: web, path: '" + std::string(dir / "webv") +
                                 "', weight: 1}, {name: other, path: '" + other + "', weight: 1}]",
                             "data.stages=[]"}),
            testing::quiet_options());
  });
  EXPECT_NE(error.find("sources 'web'"), std::string::npos) << error;
  EXPECT_NE(error.find("'other'"), std::string::npos) << error;
  EXPECT_NE(error.find("shard header vocabulary 128 vs 256"), std::string::npos) << error;
  EXPECT_FALSE(files::exists(dir / "vocab/config.yaml")) << "nothing written for a refused run";
}

}  // namespace
}  // namespace cca
