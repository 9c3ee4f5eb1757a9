// `cca-bench train` on a tiny CPU run: the JSON's figures are consistent with each other, and
// --compare runs further configs in the same process with ratios against the first.
#include <gtest/gtest.h>

#include "bench/train_bench.h"
#include "testing/scratch_dir.h"
#include "testing/tiny_run.h"
#include "util/error.h"

namespace cca {
namespace {

bench::TrainBenchOptions quick_options() {
  bench::TrainBenchOptions o;
  o.steps = 3;
  o.warmup = 1;
  o.phase_steps = 2;
  o.profile_steps = 0;
  return o;
}

// The tiny CCA run config, or the same model with MHA.
std::string write_config(const testing::ScratchDir& dir, const std::string& name, bool mha) {
  const std::string data = testing::write_tiny_dataset(dir / "data");
  std::string yaml = testing::tiny_config_yaml(data, dir / "run");
  if (mha) {
    const std::string cca = "{kind: cca, n_heads: 4, rope_fraction: 0.5, cca: {q_compression: 2}}";
    const size_t at = yaml.find(cca);
    EXPECT_NE(at, std::string::npos) << "tiny_config_yaml changed its attention line";
    yaml.replace(at, cca.size(), "{kind: mha, n_heads: 4, rope_fraction: 0.5}");
  }
  return dir.write(name, yaml);
}

double number(const Json& doc, const std::string& key) {
  return doc.at(key, "doc").as_double(key);
}

TEST(TrainBench, ReportsConsistentFiguresForOneConfig) {
  const testing::ScratchDir dir;
  ConfigRequest request;
  request.path = write_config(dir, "cca.yaml", false);
  const Json doc = bench::run_train_bench(request, quick_options());
  const double tokens_per_step = number(doc, "tokens_per_step");
  EXPECT_EQ(tokens_per_step, 2 * 4 * 32);  // grad_accum · micro_batch · seq_len
  EXPECT_NEAR(number(doc, "tokens_per_s") * number(doc, "ms_per_step") / 1e3, tokens_per_step,
              1e-6 * tokens_per_step);
  EXPECT_GT(number(doc, "time_to_first_step_s"), 0.0);
  EXPECT_GT(number(doc, "peak_memory_gib"), 0.0);
  const Json& phases = doc.at("phases", "doc").at("ms_per_step", "phases");
  for (const char* phase : {"data", "forward", "backward", "optimizer"}) {
    EXPECT_GT(number(phases, phase), 0.0) << phase;
  }
  EXPECT_EQ(doc.find("runs"), nullptr);
}

TEST(TrainBench, AProfileAskedForOnTheCpuIsSkippedAndSaidSo) {
  const testing::ScratchDir dir;
  ConfigRequest request;
  request.path = write_config(dir, "cca.yaml", false);
  bench::TrainBenchOptions o = quick_options();
  o.profile_steps = 1;
  o.trace_path = dir / "trace.json";
  const Json doc = bench::run_train_bench(request, o);
  EXPECT_EQ(doc.find("profile"), nullptr);
  const Json* skipped = doc.find("profile_skipped");
  ASSERT_NE(skipped, nullptr);
  EXPECT_NE(skipped->as_string("profile_skipped").find("no trace written"), std::string::npos);
}

TEST(TrainBench, CompareRunsEveryConfigWithRatiosToTheFirst) {
  const testing::ScratchDir dir;
  ConfigRequest request;
  request.path = write_config(dir, "cca.yaml", false);
  bench::TrainBenchOptions o = quick_options();
  o.compare = {write_config(dir, "mha.yaml", true)};
  request.overrides = {"train.seq_len=16"};  // applies to both
  const Json doc = bench::run_train_bench(request, o);
  const auto& runs = doc.at("runs", "doc").as_array("runs");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0].at("attention", "run").as_string("attention"), "cca");
  EXPECT_EQ(runs[1].at("attention", "run").as_string("attention"), "mha");
  for (const Json& run : runs) EXPECT_EQ(number(run, "tokens_per_step"), 2 * 4 * 16);
  const auto& rows = doc.at("comparison", "doc").as_array("comparison");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_DOUBLE_EQ(number(rows[0], "tokens_per_s_ratio"), 1.0);
  EXPECT_NEAR(number(rows[1], "tokens_per_s_ratio"),
              number(runs[1], "tokens_per_s") / number(runs[0], "tokens_per_s"), 1e-12);
  EXPECT_NEAR(number(rows[1], "ms_per_step_ratio"),
              number(runs[1], "ms_per_step") / number(runs[0], "ms_per_step"), 1e-12);
}

TEST(TrainBench, DocumentMaskingRunsTheConfigOffThenOn) {
  const testing::ScratchDir dir;
  ConfigRequest request;
  request.path = write_config(dir, "cca.yaml", false);
  testing::write_tiny_manifest(dir / "data", "bos", 3, 5);
  bench::TrainBenchOptions o = quick_options();
  o.document_masking = true;
  const Json doc = bench::run_train_bench(request, o);
  const auto& runs = doc.at("runs", "doc").as_array("runs");
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_FALSE(runs[0].at("document_masking", "run").as_bool("document_masking"));
  EXPECT_TRUE(runs[1].at("document_masking", "run").as_bool("document_masking"));
  const std::string label = runs[1].at("config", "run").as_string("config");
  EXPECT_NE(label.find("+docmask"), std::string::npos) << label;
  ASSERT_EQ(doc.at("comparison", "doc").as_array("comparison").size(), 2u);
}

TEST(TrainBench, ABadCompareConfigFailsBeforeAnythingRuns) {
  const testing::ScratchDir dir;
  ConfigRequest request;
  request.path = write_config(dir, "cca.yaml", false);
  bench::TrainBenchOptions o = quick_options();
  o.compare = {dir / "missing.yaml"};
  try {
    bench::run_train_bench(request, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.yaml"), std::string::npos) << e.what();
  }
}

TEST(TrainBench, ATraceWithoutProfiledStepsIsAnError) {
  const testing::ScratchDir dir;
  ConfigRequest request;
  request.path = write_config(dir, "cca.yaml", false);
  bench::TrainBenchOptions o = quick_options();
  o.trace_path = dir / "trace.json";
  try {
    bench::run_train_bench(request, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--profile-steps"), std::string::npos) << e.what();
  }
}

// --seq-lens: one run per length (shortest first, duplicates once), micro-batches sized from
// --micro-batch-tokens, activation checkpointing through --set, and the longest that ran.
TEST(TrainBench, SeqLenSweepRunsEachLengthAndNamesTheLongest) {
  const testing::ScratchDir dir;
  ConfigRequest request;
  request.path = write_config(dir, "cca.yaml", false);
  request.overrides = {"train.activation_checkpointing=true", "model.max_seq_len=32"};
  bench::TrainBenchOptions o = quick_options();
  o.phase_steps = 0;
  o.seq_lens = {64, 16, 64};
  o.micro_batch_tokens = 64;
  const Json doc = bench::run_train_bench(request, o);
  const auto& sweep = doc.at("sweep", "doc").as_array("sweep");
  ASSERT_EQ(sweep.size(), 2u);
  EXPECT_EQ(number(sweep[0], "seq_len"), 16);
  EXPECT_EQ(number(sweep[0], "micro_batch_size"), 4);
  EXPECT_EQ(number(sweep[1], "seq_len"), 64);  // past model.max_seq_len 32: raised for the run
  EXPECT_EQ(number(sweep[1], "micro_batch_size"), 1);
  for (const Json& row : sweep) {
    EXPECT_EQ(row.at("status", "row").as_string("status"), "ok");
    EXPECT_EQ(number(row, "tokens_per_step"), 2 * 64);  // grad_accum 2 × 64 tokens
    EXPECT_GT(number(row, "tokens_per_s"), 0.0);
    EXPECT_GT(number(row, "peak_memory_gib"), 0.0);
  }
  EXPECT_EQ(number(doc, "longest_seq_len"), 64);
  EXPECT_TRUE(doc.at("activation_checkpointing", "doc").as_bool("activation_checkpointing"));
}

TEST(TrainBench, SeqLenSweepRefusesCompareAndBadLengthsBeforeRunning) {
  const testing::ScratchDir dir;
  ConfigRequest request;
  request.path = write_config(dir, "cca.yaml", false);
  bench::TrainBenchOptions o = quick_options();
  o.seq_lens = {16};
  o.compare = {write_config(dir, "mha.yaml", true)};
  EXPECT_THROW(bench::run_train_bench(request, o), Error);
  o.compare.clear();
  o.seq_lens = {16, 1};
  try {
    bench::run_train_bench(request, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--seq-lens 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cca
