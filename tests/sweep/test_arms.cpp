// How a report groups runs: the keys that differ, arms over seeds, treatments at their best
// learning rate, and which differences it calls real.
#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "sweep/arms.h"
#include "sweep/report.h"
#include "sweep/xml_check.h"
#include "testing/scratch_dir.h"
#include "util/files.h"
#include "util/format.h"
#include "util/json.h"

namespace cca::sweep {
namespace {

using testing::ScratchDir;

std::string number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}

std::string config_yaml(const std::string& attention, double lr, int seed) {
  return "model: {d_model: 64, n_layers: 2, vocab_size: 128, ffn_hidden: 128}\n"
         "attention: " +
         attention + "\noptim: {lr: " + number(lr) + "}\n" +
         "train: {steps: 8, seq_len: 32, micro_batch_size: 4, device: cpu, seed: " +
         std::to_string(seed) + "}\nschedule: {warmup_steps: 2}\n";
}

// A run whose last evaluation, at `last_step` (8 = train.steps: finished), gave `val_loss`.
std::string metrics(double val_loss, int last_step = 8) {
  const std::string step = std::to_string(last_step), loss = number(val_loss);
  return "{\"kind\":\"start\",\"step\":0,\"run_id\":\"r\"}\n"
         "{\"kind\":\"train\",\"step\":" +
         step +
         ",\"loss\":4.5,\"lr\":0.001,\"grad_norm\":1,"
         "\"tokens_per_s\":900,\"tokens_seen\":512,\"time_s\":0.4,\"memory_gib\":0.25,"
         "\"skipped_steps\":0}\n"
         "{\"kind\":\"eval\",\"step\":" +
         step + ",\"val_loss\":" + loss +
         ",\"val_ppl\":40,\"val_tokens\":64,\"tokens_seen\":512,\"time_s\":0.4}\n"
         "{\"kind\":\"summary\",\"step\":" +
         step +
         ",\"tokens_seen\":512,\"time_s\":0.4,\"tokens_per_s\":1250,\"peak_memory_gib\":0.5,"
         "\"val_loss\":" +
         loss + ",\"stopped_early\":false}\n";
}

const char* const kMha = "{kind: mha, n_heads: 4}";
const char* const kCca = "{kind: cca, n_heads: 4, rope_fraction: 0.5, cca: {q_compression: 2}}";

class ArmsTest : public ::testing::Test {
 protected:
  ScratchDir dir;
  std::vector<RunFolder> runs;
  void add(const std::string& name, const std::string& attention, double lr, int seed,
           double val_loss, int last_step = 8) {
    dir.write("s/" + name + "/config.yaml", config_yaml(attention, lr, seed));
    dir.write("s/" + name + "/metrics.jsonl", metrics(val_loss, last_step));
    runs.push_back(load_run_folder(dir / ("s/" + name)));
  }
  // mha and cca, lr 0.001 and 0.003, seeds 1..3; cca is better by `gap` at its best lr (0.003)
  // with per-seed noise shared by both variants (what pairing removes).
  void lr_sweep(double gap) {
    const double noise[] = {0.00, 0.03, -0.02};
    for (int seed = 1; seed <= 3; ++seed) {
      const double n = noise[seed - 1];
      add(format("mha,lr=0.001,seed={}", seed), kMha, 0.001, seed, 4.00 + n);
      add(format("mha,lr=0.003,seed={}", seed), kMha, 0.003, seed, 4.10 + n);
      add(format("cca,lr=0.001,seed={}", seed), kCca, 0.001, seed, 4.20 + n);
      add(format("cca,lr=0.003,seed={}", seed), kCca, 0.003, seed, 4.00 - gap + n + 0.001 * seed);
    }
  }
};

TEST_F(ArmsTest, DifferencesListEveryKeyThatVariesAndMarkKeysOfAnotherVariant) {
  add("mha", kMha, 0.001, 1, 4.0);
  add("cca", kCca, 0.001, 1, 3.9);
  add("cca-conv0", "{kind: cca, n_heads: 4, rope_fraction: 0.5, cca: {q_compression: 2, convs: 0}}",
      0.001, 1, 3.95);
  const std::vector<KeyDifference> diffs = differing_keys(runs);
  std::map<std::string, std::vector<std::string>> by_key;
  for (const KeyDifference& d : diffs) by_key[d.key] = d.values;
  EXPECT_EQ(by_key["attention.kind"], (std::vector<std::string>{"mha", "cca", "cca"}));
  EXPECT_EQ(by_key["attention.rope_fraction"], (std::vector<std::string>{"1.0", "0.5", "0.5"}));
  // A CCA key that the CCA runs disagree on; "" where it is not a key of the run's variant.
  EXPECT_EQ(by_key["attention.cca.convs"], (std::vector<std::string>{"", "2", "0"}));
  EXPECT_EQ(by_key.count("attention.cca.q_compression"), 0u);  // the same in every CCA run
  EXPECT_EQ(by_key.count("train.seed"), 0u);                   // the same in both
  EXPECT_EQ(by_key.count("run.dir"), 0u);                      // where a run lives is no difference
  EXPECT_EQ(by_key.count("optim.lr"), 0u);
}

TEST_F(ArmsTest, TreatmentsAreComparedAtTheirBestLearningRateAndPairedBySeed) {
  lr_sweep(0.05);
  const SeedAnalysis a = analyse_seeds(runs, {"optim.lr"});
  EXPECT_EQ(a.tuned_keys, (std::vector<std::string>{"optim.lr"}));
  ASSERT_EQ(a.treatments.size(), 2u);
  EXPECT_EQ(a.treatments[0].name, "mha");
  EXPECT_EQ(a.treatments[1].name, "cca");
  ASSERT_EQ(a.treatments[0].arms.size(), 2u);
  EXPECT_EQ(a.treatments[0].arms[0].label, "lr=0.001");
  EXPECT_EQ(a.treatments[0].best, 0u);  // mha is best at 0.001
  EXPECT_EQ(a.treatments[1].best, 1u);  // cca at 0.003
  const Arm& mha = a.treatments[0].arms[0];
  EXPECT_EQ(mha.seeds, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_NEAR(mha.loss.mean, 4.0 + 0.01 / 3, 1e-12);
  EXPECT_EQ(a.fewest_seeds, 3);
  ASSERT_EQ(a.comparisons.size(), 1u);
  const Comparison& c = a.comparisons[0];
  EXPECT_TRUE(c.paired);
  EXPECT_NEAR(c.difference.mean, -0.05 + 0.002, 1e-12);  // cca − mha
  EXPECT_TRUE(c.difference.excludes_zero());
  EXPECT_TRUE(a.excluded.empty());
}

TEST_F(ArmsTest, AGapWithinTheSeedNoiseIsNotCalledReal) {
  // Seeds that disagree on the sign: the interval of the difference straddles zero.
  add("mha-seed1", kMha, 0.001, 1, 4.00);
  add("mha-seed2", kMha, 0.001, 2, 4.00);
  add("mha-seed3", kMha, 0.001, 3, 4.00);
  add("cca-seed1", kCca, 0.001, 1, 3.95);
  add("cca-seed2", kCca, 0.001, 2, 4.04);
  add("cca-seed3", kCca, 0.001, 3, 3.98);
  const SeedAnalysis a = analyse_seeds(runs, {"optim.lr"});
  EXPECT_TRUE(a.tuned_keys.empty());  // lr is the same everywhere
  ASSERT_EQ(a.treatments.size(), 2u);
  EXPECT_EQ(a.treatments[1].name, "cca");
  EXPECT_FALSE(a.comparisons[0].difference.excludes_zero());
}

TEST_F(ArmsTest, UnfinishedRunsAreNotCountedAndSaySo) {
  add("mha-seed1", kMha, 0.001, 1, 4.0);
  add("mha-seed2", kMha, 0.001, 2, 4.1, /*last_step=*/4);
  const SeedAnalysis a = analyse_seeds(runs, {});
  ASSERT_EQ(a.treatments.size(), 1u);
  EXPECT_EQ(a.treatments[0].arms[0].seeds, (std::vector<int64_t>{1}));
  ASSERT_EQ(a.excluded.size(), 1u);
  EXPECT_NE(a.excluded[0].find("mha-seed2: unfinished (4/8 steps)"), std::string::npos);
}

TEST_F(ArmsTest, WithoutTuningEveryLearningRateIsItsOwnTreatment) {
  lr_sweep(0.05);
  const SeedAnalysis a = analyse_seeds(runs, {});
  EXPECT_EQ(a.treatments.size(), 4u);
  EXPECT_EQ(a.comparisons.size(), 6u);
}

TEST_F(ArmsTest, ReportShowsDifferencesIntervalsVerdictsAndTheLearningRatePlot) {
  lr_sweep(0.05);
  const ReportFiles written = write_report(runs, dir / "out", "lr sweep");
  const std::string md = files::read_file(written.markdown);
  // The keys that differ are columns of the results table, each run linked to its config.
  EXPECT_NE(md.find("| Run | attention.kind | attention.rope_fraction | optim.lr | train.seed |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| [cca,lr=0.001,seed=1](../s/cca,lr=0.001,seed=1/config.yaml) | cca | 0.5 | "
                    "0.001 | 1 |"),
            std::string::npos)
      << md;
  // The summary compares each treatment at its best learning rate with the first one.
  EXPECT_NE(md.find("| Variant | Best | Seeds |"), std::string::npos) << md;
  EXPECT_NE(md.find("| cca | lr=0.003 | 1 2 3 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| mha | lr=0.001 (best) | 1 2 3 | 3 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| cca − mha | -0.0480 |"), std::string::npos) << md;
  EXPECT_NE(md.find("real: cca lower"), std::string::npos) << md;
  EXPECT_EQ(md.find("not a result"), std::string::npos) << md;
  EXPECT_NE(md.find("val_loss_lr.svg"), std::string::npos) << md;
  const std::string svg = files::read_file(dir / "out/val_loss_lr.svg");
  EXPECT_EQ(testing::check_xml(svg).problem, "");
  EXPECT_NE(svg.find(">0.001<"), std::string::npos) << svg;  // a log-scale tick label
  // The curves show each treatment's best arm, named in the legend.
  const std::string curves = files::read_file(dir / "out/val_loss_tokens.svg");
  EXPECT_NE(curves.find(">cca (lr=0.003)<"), std::string::npos) << curves;
  EXPECT_NE(curves.find(">mha (lr=0.001)<"), std::string::npos) << curves;
  EXPECT_EQ(curves.find("<title>mha,lr=0.003,seed=1</title>"), std::string::npos);
  EXPECT_NE(curves.find("<title>mha,lr=0.001,seed=1</title>"), std::string::npos);

  const Json json = parse_json(files::read_file(written.json), "report.json");
  const Json& seeds = json.at("seeds", "r");
  const Json& comparison = seeds.at("comparisons", "s").as_array("c").at(0);
  EXPECT_EQ(comparison.at("b", "c").as_string("b"), "cca");
  EXPECT_TRUE(comparison.at("real", "c").as_bool("real"));
  const Json& seed_values = json.at("differences", "r").at("train.seed", "d");
  EXPECT_EQ(seed_values.as_array("seeds").at(2).as_string("seed"), "1");
}

TEST_F(ArmsTest, FewerThanThreeSeedsIsNotAResult) {
  add("mha-seed1", kMha, 0.001, 1, 4.0);
  add("mha-seed2", kMha, 0.001, 2, 4.1);
  add("cca-seed1", kCca, 0.001, 1, 3.9);
  add("cca-seed2", kCca, 0.001, 2, 3.95);
  const std::string md = files::read_file(write_report(runs, dir / "out", "t").markdown);
  EXPECT_NE(md.find("Some arm has fewer than 3 seeds: not a result."), std::string::npos) << md;
}

}  // namespace
}  // namespace cca::sweep
