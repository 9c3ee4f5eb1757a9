// `cca-train sweep` and `cca-train report` as a user runs them: a CPU smoke sweep of tiny
// models that is SIGKILLed while its second run trains and then continued, the report checked
// against the runs' metrics.jsonl and the accounting formulas, validation before anything
// starts, and a dry run of every shipped sweep file.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <string>
#include <vector>

#include "sweep/run_metrics.h"
#include "testing/process.h"
#include "testing/scratch_dir.h"
#include "testing/tiny_run.h"
#include "util/files.h"
#include "util/json.h"

namespace cca {
namespace {

using testing::ScratchDir;
using testing::spawn_trainer;
using testing::wait_for;
using testing::wait_until;

constexpr int64_t kSteps = 60;

class SweepProcessTest : public ::testing::Test {
 protected:
  ScratchDir dir;
  std::string data = testing::write_tiny_dataset(dir / "data");
  std::string log = dir / "log.txt";
  std::string out = dir / "sweep";

  // Three tiny variants; checkpoints every 10 steps so a killed run resumes from one.
  std::string sweep_file() {
    dir.write("base.yaml", testing::tiny_config_yaml(data, dir / "unused"));
    return dir.write("s.yaml",
                     "title: Smoke\n"
                     "base: base.yaml\n"
                     "set: {train.steps: " +
                         std::to_string(kSteps) +
                         ", train.eval_every: 20, checkpoint.every: 10, logging.every: 10}\n"
                         "runs:\n"
                         "  mha: {attention.kind: mha}\n"
                         "  gqa: {attention: {kind: gqa, n_kv_heads: 2}}\n"
                         "  cca: {attention.kind: cca}\n"
                         "out_dir: " +
                         out + "\n");
  }
  int cca_train(const std::vector<std::string>& args) {
    return wait_for(spawn_trainer(args, log), 300).value_or(-1);
  }
  std::string log_text() { return files::read_file(log); }
  std::string metrics_of(const std::string& run) {
    return files::read_file(files::join(files::join(out, run), "metrics.jsonl"));
  }
};

// The last record of `kind` in a metrics file, as JSON.
Json last_record(const std::string& text, const std::string& kind) {
  Json last;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const Json record = parse_json(text.substr(start, end - start), "metrics.jsonl");
    if (record.at("kind", "r").as_string("kind") == kind) last = record;
    start = end + 1;
  }
  return last;
}

// report.json's numbers for one run must be the run's own (metrics.jsonl) and the accounting's.
void check_report_entry(const Json& entry, const std::string& run_dir, int64_t kv_bytes) {
  const std::string name = entry.at("name", "r").as_string("name");
  SCOPED_TRACE(name);
  const auto eval = testing::metric_by_step(run_dir, "eval", "val_loss");
  ASSERT_FALSE(eval.empty());
  EXPECT_EQ(entry.at("final_val_loss", "r").as_double("v"), eval.rbegin()->second);
  EXPECT_EQ(entry.at("final_val_step", "r").as_int("v"), eval.rbegin()->first);
  double best = eval.begin()->second;
  for (const auto& [step, loss] : eval) best = std::min(best, loss);
  EXPECT_EQ(entry.at("best_val_loss", "r").as_double("v"), best);
  const Json summary = last_record(files::read_file(run_dir + "/metrics.jsonl"), "summary");
  EXPECT_EQ(entry.at("tokens_per_s", "r").as_double("v"),
            summary.at("tokens_per_s", "s").as_double("v"));
  EXPECT_EQ(entry.at("tokens_seen", "r").as_int("v"), summary.at("tokens_seen", "s").as_int("v"));
  EXPECT_EQ(entry.at("tokens_seen", "r").as_int("v"), kSteps * 4 * 2 * 32);  // steps × batch
  EXPECT_EQ(entry.at("step", "r").as_int("v"), kSteps);
  EXPECT_TRUE(entry.at("finished", "r").as_bool("v"));
  EXPECT_EQ(entry.at("kv_bytes_per_token", "r").as_int("v"), kv_bytes);
}

TEST_F(SweepProcessTest, AKilledSweepContinuesWhereItStoppedAndReportsItsRuns) {
  const std::string file = sweep_file();
  const pid_t sweep = spawn_trainer({"sweep", "--config", file}, log);
  // SIGKILL the sweep while its second run trains: that run gets SIGTERM (its parent died),
  // checkpoints and stops early.
  const std::string gqa = out + "/gqa";
  ASSERT_TRUE(
      wait_until([&] { return files::exists(gqa + "/checkpoints/step_00000010/DONE"); }, 120))
      << log_text();
  kill(sweep, SIGKILL);
  EXPECT_EQ(wait_for(sweep), 128 + SIGKILL);
  ASSERT_TRUE(wait_until(
      [&] { return metrics_of("gqa").find("\"kind\":\"summary\"") != std::string::npos; }, 60))
      << log_text();
  const sweep::RunMetrics stopped = sweep::read_run_metrics(gqa + "/metrics.jsonl");
  ASSERT_FALSE(sweep::is_finished(stopped, kSteps)) << "gqa ran to the end before the kill";
  EXPECT_FALSE(files::exists(out + "/cca"));
  const std::string mha_before = metrics_of("mha");

  ASSERT_EQ(cca_train({"sweep", "--config", file}), 0) << log_text();
  EXPECT_EQ(metrics_of("mha"), mha_before) << "a finished run was trained again";
  EXPECT_NE(log_text().find("[1/3] mha: finished already, skipped"), std::string::npos);
  EXPECT_NE(log_text().find("[2/3] gqa: resuming from step"), std::string::npos);
  const sweep::RunMetrics resumed = sweep::read_run_metrics(gqa + "/metrics.jsonl");
  EXPECT_EQ(resumed.launches, 2);
  EXPECT_TRUE(sweep::is_finished(resumed, kSteps));
  const sweep::RunMetrics fresh = sweep::read_run_metrics(out + "/cca/metrics.jsonl");
  EXPECT_EQ(fresh.launches, 1);
  EXPECT_TRUE(sweep::is_finished(fresh, kSteps));

  // The report the sweep wrote: E = 64, 2 layers, 4 heads of 16; KV bytes = 2·layers·kv
  // heads·head_dim·2 (bf16); gqa has 2 kv heads, cca (compression 2) 2 latent kv heads.
  const Json report = parse_json(files::read_file(out + "/report.json"), "report.json");
  const Json::Array& runs = report.at("runs", "r").as_array("runs");
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(report.at("title", "r").as_string("t"), "Smoke");
  check_report_entry(runs[0], out + "/mha", 2 * 2 * 4 * 16 * 2);
  check_report_entry(runs[1], out + "/gqa", 2 * 2 * 2 * 16 * 2);
  check_report_entry(runs[2], out + "/cca", 2 * 2 * 2 * 16 * 2);
  EXPECT_EQ(runs[0].at("params_total", "r").as_int("v"),
            128 * 64 + 64 + 2 * (4 * 64 * 64 + 3 * 64 * 128 + 2 * 64));
  const std::string md = files::read_file(out + "/report.md");
  EXPECT_NE(md.find("| [gqa](gqa/config.yaml) | gqa 4q/2kv ×16 |"), std::string::npos) << md;
  EXPECT_TRUE(files::exists(out + "/report.html"));
  EXPECT_TRUE(files::exists(out + "/val_loss_tokens.svg"));

  // `cca-train report` on the sweep folder gives the same numbers (its runs sorted by name); a
  // folder that is no run is an error naming it.
  ASSERT_EQ(cca_train({"report", out, "--out", dir / "again", "--title", "Again"}), 0)
      << log_text();
  const Json again = parse_json(files::read_file(dir / "again/report.json"), "report.json");
  const Json::Array& sorted = again.at("runs", "r").as_array("runs");
  ASSERT_EQ(sorted.size(), 3u);
  EXPECT_EQ(sorted[0].dump(), runs[2].dump());  // cca
  EXPECT_EQ(sorted[1].dump(), runs[1].dump());  // gqa
  EXPECT_EQ(sorted[2].dump(), runs[0].dump());  // mha
  EXPECT_EQ(cca_train({"report", dir / "data"}), 1);
  EXPECT_NE(log_text().find("error: report: '" + dir / "data" + "' has no metrics.jsonl"),
            std::string::npos)
      << log_text();
}

TEST_F(SweepProcessTest, EveryRunIsValidatedBeforeAnyStarts) {
  const std::string file = dir.write(
      "bad.yaml",
      "base: base.yaml\nruns:\n  ok: {}\n  typo: {attention.knd: mha}\nout_dir: " + out + "\n");
  dir.write("base.yaml", testing::tiny_config_yaml(data, dir / "unused"));
  EXPECT_EQ(cca_train({"sweep", "--config", file}), 2);
  EXPECT_NE(log_text().find("error: invalid configuration sweep '" + file + "'"), std::string::npos)
      << log_text();
  EXPECT_NE(log_text().find(file + ":4:10: unknown key 'attention.knd' (did you mean "
                                   "'attention.kind'?) [run 'typo']"),
            std::string::npos)
      << log_text();
  EXPECT_FALSE(files::exists(out));
  // --only validates (and runs) the runs it names.
  EXPECT_EQ(cca_train({"sweep", "--config", file, "--only", "ok", "--dry-run"}), 0);
}

TEST_F(SweepProcessTest, DryRunPrintsThePlanAndTrainsNothing) {
  const std::string file = sweep_file();
  ASSERT_EQ(cca_train({"sweep", "--config", file, "--only", "cca", "gqa", "--dry-run", "--set",
                       "train.steps=7"}),
            0)
      << log_text();
  const std::string text = log_text();
  EXPECT_NE(text.find("gqa: cca-train --config"), std::string::npos) << text;
  EXPECT_NE(text.find("--set train.steps=7 --set run.dir=" + out + "/gqa"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("mha: cca-train"), std::string::npos) << text;
  EXPECT_FALSE(files::exists(out));
}

TEST(ShippedSweepFiles, EveryOneDryRuns) {
  const std::string folder = std::string(CCA_SOURCE_DIR) + "/configs/ablations";
  ScratchDir dir;
  const std::string log = dir / "log.txt";
  int count = 0;
  for (const std::string& name : files::list_directory(folder)) {
    if (name.size() < 5 || name.substr(name.size() - 5) != ".yaml") continue;
    SCOPED_TRACE(name);
    ++count;
    EXPECT_EQ(
        wait_for(spawn_trainer({"sweep", "--config", folder + "/" + name, "--dry-run"}, log), 120),
        0)
        << files::read_file(log);
  }
  EXPECT_GE(count, 6);
}

}  // namespace
}  // namespace cca
