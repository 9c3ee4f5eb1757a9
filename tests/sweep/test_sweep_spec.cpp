// Sweep files: expansion of overlays and grids into named runs, and errors that name the sweep
// file, the line, the run and the key.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sweep/sweep_spec.h"
#include "testing/scratch_dir.h"
#include "util/error.h"
#include "util/files.h"

namespace cca::sweep {
namespace {

using testing::ScratchDir;

class SweepSpecTest : public ::testing::Test {
 protected:
  ScratchDir dir;
  std::string sweep_file = dir / "sweeps/s.yaml";

  void SetUp() override {
    files::make_directories(dir / "sweeps");
    dir.write("base.yaml",
              "model: {d_model: 64, n_layers: 2, vocab_size: 128}\n"
              "attention: {n_heads: 4}\n"
              "train: {steps: 10, seq_len: 32, device: cpu}\n"
              "schedule: {warmup_steps: 2}\n");
  }
  SweepSpec parse(const std::string& yaml, const std::vector<std::string>& cli = {}) {
    return parse_sweep_spec(yaml, sweep_file, cli);
  }
  // The message of the ConfigError that parsing (and loading every run of) `yaml` throws.
  std::string error_of(const std::string& yaml, const std::vector<std::string>& cli = {}) {
    try {
      const SweepSpec spec = parse(yaml, cli);
      load_all(spec, spec.runs, 1);
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error for:\n" << yaml;
    return "";
  }
};

std::vector<std::string> names(const SweepSpec& spec) {
  std::vector<std::string> out;
  for (const SweepRun& run : spec.runs) out.push_back(run.name);
  return out;
}

TEST_F(SweepSpecTest, NamedRunsKeepFileOrderAndApplyOverridesInOrder) {
  const SweepSpec spec = parse(
      "base: ../base.yaml\n"
      "set: {train.steps: 20, optim.lr: 0.001}\n"
      "runs:\n"
      "  zeta: {attention.kind: mha, train.steps: 30}\n"
      "  alpha: {attention: {kind: gqa, n_kv_heads: 2}}\n"
      "  plain:\n"
      "out_dir: out/abl\n",
      {"optim.lr=0.002"});
  EXPECT_EQ(names(spec), (std::vector<std::string>{"zeta", "alpha", "plain"}));
  EXPECT_EQ(spec.base_path, dir / "sweeps/../base.yaml");
  EXPECT_EQ(spec.title, "s");
  ASSERT_EQ(spec.runs.size(), 3u);
  EXPECT_EQ(spec.runs[0].dir, "out/abl/zeta");
  EXPECT_EQ(spec.runs[0].override_texts(),
            (std::vector<std::string>{"train.steps=20", "optim.lr=0.001", "attention.kind=mha",
                                      "train.steps=30", "optim.lr=0.002", "run.dir=out/abl/zeta"}));
  EXPECT_EQ(spec.runs[1].variant,
            (std::vector<std::string>{"attention.kind=gqa", "attention.n_kv_heads=2"}));
  EXPECT_TRUE(spec.runs[2].variant.empty());

  const std::vector<LoadedConfig> configs = load_all(spec, spec.runs, 1);
  EXPECT_EQ(configs[0].config.attention.kind, "mha");
  EXPECT_EQ(configs[0].config.train.steps, 30);         // the overlay beats set:
  EXPECT_DOUBLE_EQ(configs[0].config.optim.lr, 0.002);  // --set beats both
  EXPECT_EQ(configs[1].config.attention.n_kv_heads, 2);
  EXPECT_EQ(configs[1].config.train.steps, 20);
  EXPECT_EQ(configs[2].config.attention.kind, "mha");  // the base as it is
  EXPECT_EQ(configs[2].config.run.dir, "out/abl/plain");
}

TEST_F(SweepSpecTest, GridExpandsEveryCombinationFirstKeySlowest) {
  const SweepSpec spec = parse(
      "base: ../base.yaml\n"
      "set: {attention.kind: cca}\n"
      "grid: {attention.cca.convs: [0, 2], attention.cca: {qk_mean: [true, false]}}\n");
  EXPECT_EQ(names(spec),
            (std::vector<std::string>{"convs=0,qk_mean=true", "convs=0,qk_mean=false",
                                      "convs=2,qk_mean=true", "convs=2,qk_mean=false"}));
  EXPECT_EQ(spec.out_dir, "runs/s");  // default: runs/<sweep file stem>
  const std::vector<LoadedConfig> configs = load_all(spec, spec.runs, 1);
  EXPECT_EQ(configs[1].config.attention.settings.integer("attention.cca.convs"), 0);
  EXPECT_FALSE(configs[1].config.attention.settings.flag("attention.cca.qk_mean"));
  EXPECT_EQ(configs[2].config.attention.settings.integer("attention.cca.convs"), 2);
  EXPECT_TRUE(configs[2].config.attention.settings.flag("attention.cca.qk_mean"));
}

TEST_F(SweepSpecTest, RunsCrossedWithTheGrid) {
  const SweepSpec spec = parse(
      "base: ../base.yaml\n"
      "runs: {mha: {attention.kind: mha}, gqa: {attention.kind: gqa, attention.n_kv_heads: 2}}\n"
      "grid: {train.seed: [1, 2]}\n");
  EXPECT_EQ(names(spec),
            (std::vector<std::string>{"mha,seed=1", "mha,seed=2", "gqa,seed=1", "gqa,seed=2"}));
  EXPECT_EQ(load_all(spec, spec.runs, 1)[3].config.train.seed, 2);
}

TEST_F(SweepSpecTest, GridKeysSharingALastPartAreNamedInFull) {
  const SweepSpec spec = parse(
      "base: ../base.yaml\n"
      "grid: {model.n_layers: [1], moe.first_dense_layers: [0], attention.n_heads: [4],"
      " attention.mla.v_head_dim: [8], attention.cca.convs: [1], model.d_model: [64]}\n");
  ASSERT_EQ(spec.runs.size(), 1u);
  EXPECT_EQ(spec.runs[0].name,
            "n_layers=1,first_dense_layers=0,n_heads=4,v_head_dim=8,convs=1,d_model=64");
}

TEST_F(SweepSpecTest, InlineBaseConfigLoadsAndItsErrorsPointAtTheSweepFile) {
  const std::string base =
      "base_config:\n"
      "  model: {d_model: 64, n_layers: 2, vocab_size: 128}\n"
      "  attention: {n_heads: 4}\n";
  const SweepSpec spec = parse(base + "runs: {a: {attention.kind: mla}}\n");
  EXPECT_TRUE(spec.base_path.empty());
  EXPECT_NE(spec.base_config.find("d_model: 64"), std::string::npos);
  EXPECT_EQ(load_all(spec, spec.runs, 1)[0].config.model.d_model, 64);

  const std::string message = error_of(
      "base_config:\n"
      "  model: {d_model: 64, n_layayers: 2}\n"
      "runs: {a: {}}\n");
  EXPECT_NE(message.find(sweep_file + ":2:"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'model.n_layers'"), std::string::npos) << message;
}

TEST_F(SweepSpecTest, ConfigErrorsNameTheFileLineRunAndKey) {
  const std::string message = error_of(
      "base: ../base.yaml\n"
      "runs:\n"
      "  good: {attention.kind: mha}\n"
      "  bad: {attention.knd: mha}\n"
      "  worse: {attention.kind: nope}\n");
  EXPECT_NE(message.find("sweep '" + sweep_file + "'"), std::string::npos) << message;
  EXPECT_NE(message.find(sweep_file + ":4:9: unknown key 'attention.knd' (did you mean "
                                      "'attention.kind'?) [run 'bad']"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find(sweep_file + ":5:11: attention.kind"), std::string::npos) << message;
  EXPECT_NE(message.find("[run 'worse']"), std::string::npos) << message;
  EXPECT_EQ(message.find("'good'"), std::string::npos) << message;
}

TEST_F(SweepSpecTest, AProblemSharedByEveryRunIsReportedOnce) {
  const std::string message = error_of(
      "base: ../base.yaml\n"
      "set: {train.stepz: 5}\n"
      "runs: {a: {}, b: {}, c: {}}\n");
  EXPECT_NE(message.find("(1 error)"), std::string::npos) << message;
  EXPECT_NE(message.find(sweep_file + ":2:7: unknown key 'train.stepz'"), std::string::npos)
      << message;
  EXPECT_NE(message.find("[every run]"), std::string::npos) << message;
  EXPECT_NE(error_of("base: ../base.yaml\nruns: {a: {}}\n", {"train.stepz=1"})
                .find("--set train.stepz=1: unknown key 'train.stepz'"),
            std::string::npos);
}

TEST_F(SweepSpecTest, SweepFileMistakesAreReportedTogether) {
  const std::string message = error_of(
      "base: ../missing.yaml\n"
      "rnus: {a: {}}\n"
      "out_dir: x\n");
  EXPECT_NE(message.find(sweep_file + ":1:7: base config '" + dir / "sweeps/../missing.yaml" +
                         "' does not exist"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find(sweep_file + ":2:1: unknown sweep key 'rnus' (did you mean 'runs'?)"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("a sweep needs runs: (named overlays) or grid: (keys to vary)"),
            std::string::npos)
      << message;
}

TEST_F(SweepSpecTest, RejectsWhatASweepCannotDo) {
  const std::string base = "base: ../base.yaml\n";
  EXPECT_NE(error_of(base + "runs: {a: {run.dir: x}}\n").find(":2:12: run.dir is set by the sweep"),
            std::string::npos);
  EXPECT_NE(error_of(base + "runs: {a: {}}\n", {"run.dir=x"}).find("change out_dir instead"),
            std::string::npos);
  EXPECT_NE(error_of(base + "grid: {train.seed: 3}\n").find("needs a non-empty list of values"),
            std::string::npos);
  EXPECT_NE(error_of(base + "runs: {a/b: {}}\n").find("run name 'a/b' is not a plain folder name"),
            std::string::npos);
  EXPECT_NE(error_of(base + "runs: {a: {train.seed: 1, train: {seed: 2}}}\n")
                .find("duplicate key 'train.seed'"),
            std::string::npos);
  EXPECT_NE(error_of("base_config: {model: {d_model: 64}}\nbase: ../base.yaml\nruns: {a: {}}\n")
                .find("not both"),
            std::string::npos);
  EXPECT_NE(error_of("runs: {a: {}}\n").find("a sweep needs base: FILE or base_config"),
            std::string::npos);
  EXPECT_NE(error_of("base_config: {include: x.yaml}\nruns: {a: {}}\n").find("use base: FILE"),
            std::string::npos);
  EXPECT_NE(error_of(base + "runs: [a, b]\n").find("runs: expects a mapping"), std::string::npos);
  EXPECT_NE(error_of(base + "runs: {a: {x: 1}\n").find(sweep_file + ":"), std::string::npos);
  EXPECT_NE(error_of(base + "runs: {a: {x: 1}\n").find("YAML syntax error"), std::string::npos);
  EXPECT_NE(error_of(base + "runs: {a: {}, a: {}}\n").find("two runs are named 'a'"),
            std::string::npos);
}

TEST_F(SweepSpecTest, OnlySelectsRunsInFileOrderAndRejectsUnknownNames) {
  const SweepSpec spec = parse("base: ../base.yaml\nruns: {mha: {}, gqa: {}, cca: {}}\n");
  const std::vector<SweepRun> picked = select_runs(spec, {"cca", "mha"});
  ASSERT_EQ(picked.size(), 2u);
  EXPECT_EQ(picked[0].name, "mha");
  EXPECT_EQ(picked[1].name, "cca");
  EXPECT_EQ(select_runs(spec, {}).size(), 3u);
  try {
    select_runs(spec, {"gga"});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'gqa'?); its runs: mha, gqa, cca"),
              std::string::npos)
        << e.what();
  }
}

TEST_F(SweepSpecTest, ReadingAMissingFileNamesIt) {
  try {
    read_sweep_spec(dir / "nope.yaml", {});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sweep file '" + dir / "nope.yaml" + "' does not exist"),
              std::string::npos);
  }
}

}  // namespace
}  // namespace cca::sweep
