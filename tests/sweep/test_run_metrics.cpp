// Reading metrics.jsonl: resumes that repeat steps, rolled-back stretches, the finished rule, and
// errors that name the file and line.
#include <gtest/gtest.h>

#include <string>

#include "sweep/run_metrics.h"
#include "testing/scratch_dir.h"
#include "util/error.h"

namespace cca::sweep {
namespace {

using testing::ScratchDir;

std::string train_line(int step, double loss, double time_s) {
  return "{\"kind\":\"train\",\"step\":" + std::to_string(step) +
         ",\"loss\":" + std::to_string(loss) +
         ",\"lr\":0.001,\"grad_norm\":1,\"tokens_per_s\":1000,\"tokens_seen\":" +
         std::to_string(step * 100) + ",\"time_s\":" + std::to_string(time_s) +
         ",\"memory_gib\":0.5,\"skipped_steps\":0}\n";
}

std::string eval_line(int step, double loss) {
  return "{\"kind\":\"eval\",\"step\":" + std::to_string(step) +
         ",\"val_loss\":" + std::to_string(loss) +
         ",\"val_ppl\":1,\"val_tokens\":64,\"tokens_seen\":" + std::to_string(step * 100) +
         ",\"time_s\":" + std::to_string(step * 0.1) + "}\n";
}

std::string summary_line(int step, bool stopped_early, double tokens_per_s, double memory) {
  return "{\"kind\":\"summary\",\"step\":" + std::to_string(step) +
         ",\"tokens_seen\":" + std::to_string(step * 100) +
         ",\"time_s\":1.5,\"tokens_per_s\":" + std::to_string(tokens_per_s) +
         ",\"peak_memory_gib\":" + std::to_string(memory) +
         ",\"stopped_early\":" + (stopped_early ? "true" : "false") + "}\n";
}

const std::string kStart = "{\"kind\":\"start\",\"step\":0,\"run_id\":\"r\"}\n";

std::string resume_line(int step) {
  return "{\"kind\":\"resume\",\"step\":" + std::to_string(step) + ",\"run_id\":\"r\"}\n";
}

TEST(RunMetrics, EachLaunchsWarmUpIsLeftOutOfTrainingTime) {
  ScratchDir dir;
  // Steps take 0.1 s, but launch 1's first 10 took 3 s (2 s of warm-up) and launch 2's first 10
  // after the resume at 30 took 1.5 s (0.5 s).
  std::string text = kStart;
  for (int step = 10; step <= 40; step += 10) {
    const double t = step == 10 ? 3.0 : 3.0 + (step - 10) * 0.1;
    text += train_line(step, 4.0, t);
  }
  text += resume_line(30);
  text += train_line(40, 4.0, 6.5) + train_line(50, 4.0, 7.5) + train_line(60, 4.0, 8.5);
  const RunMetrics m = read_run_metrics(dir.write("metrics.jsonl", text));
  ASSERT_EQ(m.warmups.size(), 2u);
  EXPECT_EQ(m.warmups[0].step, 10);
  EXPECT_NEAR(m.warmups[0].seconds, 2.0, 1e-9);
  EXPECT_EQ(m.warmups[1].step, 40);
  EXPECT_NEAR(m.warmups[1].seconds, 0.5, 1e-9);
  EXPECT_DOUBLE_EQ(warmup_through(m, 9), 0.0);
  EXPECT_NEAR(warmup_through(m, 30), 2.0, 1e-9);
  EXPECT_NEAR(warmup_through(m, 60), 2.5, 1e-9);
  EXPECT_NEAR(*summarize(m).time_s, 6.0, 1e-9);  // 60 steps of 0.1 s
}

TEST(RunMetrics, AResumedRunKeepsTheLaterRecordOfARepeatedStep) {
  ScratchDir dir;
  // Launch 1 reaches step 6 (checkpoint at 4) and is killed; launch 2 resumes at 4 and ends at 8.
  const std::string text = kStart + train_line(2, 5.0, 0.2) + eval_line(2, 5.5) +
                           train_line(4, 4.0, 0.4) + eval_line(4, 4.5) + train_line(6, 3.9, 0.6) +
                           eval_line(6, 4.4) + resume_line(4) + train_line(6, 3.5, 0.7) +
                           eval_line(6, 4.1) + train_line(8, 3.0, 0.9) + eval_line(8, 3.8) +
                           summary_line(8, false, 1234.5, 0.75);
  const RunMetrics m = read_run_metrics(dir.write("metrics.jsonl", text));
  EXPECT_EQ(m.launches, 2);
  ASSERT_EQ(m.train.size(), 4u);
  EXPECT_EQ(m.train[2].step, 6);
  EXPECT_DOUBLE_EQ(m.train[2].loss, 3.5);
  EXPECT_DOUBLE_EQ(*m.train[2].time_s, 0.7);
  ASSERT_EQ(m.eval.size(), 4u);
  EXPECT_DOUBLE_EQ(m.eval[2].val_loss, 4.1);
  EXPECT_EQ(*m.eval[3].tokens_seen, 800);
  EXPECT_TRUE(m.last_launch_ended);
  EXPECT_TRUE(is_finished(m, 8));
  EXPECT_FALSE(is_finished(m, 16));  // train.steps raised since: not finished any more

  const RunOutcome o = summarize(m);
  EXPECT_EQ(o.step, 8);
  EXPECT_EQ(*o.tokens_seen, 800);
  // The summary's, the furthest record, less launch 2's warm-up: 0.3 s from step 4 to 6 where
  // its steps take 0.1 s.
  EXPECT_NEAR(o.warmup_s, 0.1, 1e-9);
  EXPECT_NEAR(*o.time_s, 1.4, 1e-9);
  EXPECT_DOUBLE_EQ(o.final_eval->val_loss, 3.8);
  EXPECT_EQ(o.best_eval->step, 8);
  EXPECT_DOUBLE_EQ(*o.tokens_per_s, 1234.5);
  EXPECT_TRUE(o.from_summary);
  EXPECT_DOUBLE_EQ(*o.peak_memory_gib, 0.75);
}

TEST(RunMetrics, AResumeDropsWhatTheEarlierLaunchLoggedAfterItsCheckpoint) {
  ScratchDir dir;
  // Launch 1 logged steps up to 8, but its last checkpoint was at 4; launch 2 has reached 6.
  const std::string text = kStart + train_line(4, 4.0, 0.4) + train_line(8, 2.0, 0.8) +
                           eval_line(8, 2.5) + summary_line(8, true, 10, 0.5) + resume_line(4) +
                           train_line(6, 3.0, 0.6);
  const RunMetrics m = read_run_metrics(dir.write("metrics.jsonl", text));
  ASSERT_EQ(m.train.size(), 2u);
  EXPECT_EQ(m.train.back().step, 6);
  EXPECT_TRUE(m.eval.empty());
  EXPECT_TRUE(m.summary.empty());
  EXPECT_FALSE(m.last_launch_ended);  // launch 2 is still running (or was killed)
  const RunOutcome o = summarize(m);
  EXPECT_EQ(o.step, 6);
  EXPECT_FALSE(o.final_eval.has_value());
  EXPECT_FALSE(o.from_summary);  // no summary yet: the last train record's speed
  EXPECT_DOUBLE_EQ(*o.tokens_per_s, 1000);
}

TEST(RunMetrics, AFreshStartInTheSameFileForgetsEverythingBefore) {
  ScratchDir dir;
  const std::string text = kStart + train_line(2, 9.0, 0.2) + kStart + train_line(2, 4.0, 0.2);
  const RunMetrics m = read_run_metrics(dir.write("metrics.jsonl", text));
  ASSERT_EQ(m.train.size(), 1u);
  EXPECT_DOUBLE_EQ(m.train[0].loss, 4.0);
}

TEST(RunMetrics, StoppedEarlyIsNotFinishedAndBestIsTheLowest) {
  ScratchDir dir;
  const std::string text = kStart + eval_line(2, 3.0) + eval_line(4, 2.0) + eval_line(6, 2.5) +
                           summary_line(6, true, 50, 0.25) + "\n  \n" + "{\"kind\":\"future\"}\n";
  const RunMetrics m = read_run_metrics(dir.write("metrics.jsonl", text));
  EXPECT_FALSE(is_finished(m, 6));
  const RunOutcome o = summarize(m);
  EXPECT_DOUBLE_EQ(o.final_eval->val_loss, 2.5);
  EXPECT_DOUBLE_EQ(o.best_eval->val_loss, 2.0);
  EXPECT_EQ(o.best_eval->step, 4);
}

TEST(RunMetrics, OlderFilesWithoutTimeAndTokensStillRead) {
  ScratchDir dir;
  const std::string text =
      kStart + "{\"kind\":\"eval\",\"step\":4,\"val_loss\":3.5,\"val_ppl\":33,\"val_tokens\":8}\n";
  const RunMetrics m = read_run_metrics(dir.write("metrics.jsonl", text));
  ASSERT_EQ(m.eval.size(), 1u);
  EXPECT_FALSE(m.eval[0].tokens_seen.has_value());
  EXPECT_FALSE(m.eval[0].time_s.has_value());
}

std::string error_of(const std::string& path) {
  try {
    read_run_metrics(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << path;
  return "";
}

TEST(RunMetrics, ErrorsNameTheFileAndLine) {
  ScratchDir dir;
  const std::string bad_json =
      dir.write("a.jsonl", kStart + train_line(1, 2, 0.1) + "{\"kind\":\n");
  EXPECT_NE(error_of(bad_json).find(bad_json + ":3: record: invalid JSON"), std::string::npos)
      << error_of(bad_json);
  const std::string no_loss = dir.write("b.jsonl", kStart + "{\"kind\":\"eval\",\"step\":2}\n");
  EXPECT_NE(error_of(no_loss).find(no_loss + ":2: missing field record.val_loss"),
            std::string::npos)
      << error_of(no_loss);
  const std::string no_kind = dir.write("c.jsonl", "{\"step\":2}\n");
  EXPECT_NE(error_of(no_kind).find(no_kind + ":1: missing field record.kind"), std::string::npos)
      << error_of(no_kind);
  const std::string wrong_type = dir.write("d.jsonl", "\n{\"kind\":\"summary\",\"step\":\"x\"}\n");
  EXPECT_NE(error_of(wrong_type).find(wrong_type + ":2: "), std::string::npos);
  EXPECT_NE(error_of(dir / "missing.jsonl").find(dir / "missing.jsonl"), std::string::npos);
}

}  // namespace
}  // namespace cca::sweep
