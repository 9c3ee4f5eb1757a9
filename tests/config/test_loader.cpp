// load_config / load_config_text: YAML files, includes, --set overrides, origins, rendering.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <iomanip>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/loader.h"
#include "config/schema.h"
#include "config_test_util.h"
#include "util/error.h"

namespace cca {
namespace {

using testutil::contains;
using testutil::count_messages;
using testutil::expect_config_error;
using testutil::load_file_error;
using testutil::load_text_error;
using testutil::ScratchDir;
namespace fs = std::filesystem;

LoadedConfig load_text(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  LoadOptions options;
  options.overrides = overrides;
  return load_config_text(yaml, "test.yaml", options);
}

// The single diagnostic of `e` (fails the test when there is not exactly one).
std::string only_message(const ConfigError& e) {
  EXPECT_EQ(e.diagnostics().size(), 1u) << e.what();
  return e.diagnostics().empty() ? std::string() : e.diagnostics().front().message;
}

// --- Defaults ---

TEST(ConfigDefaults, EveryKeyStartsAtItsSchemaDefault) {
  Config c = default_config();
  ASSERT_GT(config_keys().size(), 50u);
  for (const KeySpec& key : config_keys()) {
    EXPECT_EQ(value_text(key, c), key.default_text()) << key.path;
  }
}

TEST(ConfigDefaults, SpotValues) {
  const Config c = default_config();
  EXPECT_EQ(c.model.d_model, 768);
  EXPECT_EQ(c.model.vocab_size, 50304);
  EXPECT_TRUE(c.model.tie_embeddings);
  EXPECT_EQ(c.attention.kind, "mha");
  EXPECT_EQ(c.attention.n_heads, 12);
  EXPECT_DOUBLE_EQ(c.attention.rope_fraction, 1.0);
  EXPECT_FALSE(c.attention.settings.optional_integer("attention.mla.q_lora_rank").has_value());
  EXPECT_EQ(c.attention.settings.integer("attention.cca.q_compression"), 4);
  EXPECT_EQ(c.attention.settings.text("attention.cca.temperature"), "exp");
  EXPECT_DOUBLE_EQ(c.optim.lr, 6e-4);
  EXPECT_EQ(c.data.train, "data/builtin/train_*.bin");
  EXPECT_EQ(c.train.seq_len, 1024);
  EXPECT_EQ(c.run.dir, "runs/default");
}

TEST(ConfigDefaults, EmptyPathLoadsTheDefaults) {
  const LoadedConfig loaded = load_config("");
  EXPECT_TRUE(loaded.files.empty());
  EXPECT_TRUE(loaded.origins.empty());
  LoadedConfig defaults;
  defaults.config = default_config();
  EXPECT_EQ(render_config_yaml(loaded, false), render_config_yaml(defaults, false));
}

TEST(ConfigDefaults, FileWithOnlyCommentsIsValid) {
  ScratchDir dir;
  const std::string path = dir.write("empty.yaml", "# nothing here\n\n");
  const LoadedConfig loaded = load_config(path);
  EXPECT_EQ(loaded.files, std::vector<std::string>{path});
  EXPECT_TRUE(loaded.origins.empty());
  EXPECT_EQ(loaded.config.model.d_model, 768);
}

// --- Value types ---

TEST(ConfigTypes, IntegerForms) {
  const Config c = load_text(
                       "model:\n  d_model: 1024\n  vocab_size: 50_304\n"
                       "data:\n  val_tokens: 1e6\n"
                       "attention:\n  n_heads: 16\n"
                       "train:\n  steps: 2.0e3\n  seed: 0\n")
                       .config;
  EXPECT_EQ(c.model.d_model, 1024);
  EXPECT_EQ(c.model.vocab_size, 50304);
  EXPECT_EQ(c.data.val_tokens, 1000000);
  EXPECT_EQ(c.train.steps, 2000);
  EXPECT_EQ(c.train.seed, 0);
}

TEST(ConfigTypes, IntegerRejectsFractionsTextAndLists) {
  EXPECT_EQ(only_message(load_text_error("model:\n  d_model: 1.5\n")),
            "model.d_model: expects an integer, got '1.5'");
  EXPECT_EQ(only_message(load_text_error("model:\n  n_layers: many\n")),
            "model.n_layers: expects an integer, got 'many'");
  EXPECT_EQ(only_message(load_text_error("model:\n  n_layers: [1, 2]\n")),
            "model.n_layers: expects an integer, got a list");
}

TEST(ConfigTypes, IntegerRange) {
  EXPECT_EQ(only_message(load_text_error("model:\n  d_model: 4\n")),
            "model.d_model: 4 is out of range; allowed 8 .. 65536");
  EXPECT_EQ(only_message(load_text_error("schedule:\n  warmup_steps: -1\n")),
            "schedule.warmup_steps: -1 is out of range; allowed 0 .. max");
  EXPECT_EQ(load_text("model:\n  d_model: 65536\n  n_layers: 1\nattention:\n  n_heads: 16\n")
                .config.model.d_model,
            65536);
}

TEST(ConfigTypes, Floats) {
  const Config c = load_text(
                       "optim:\n  lr: 3e-4\n  beta2: 1\n  grad_clip: .inf\n"
                       "model:\n  norm_eps: 1.0e-6\n"
                       "attention:\n  rope_theta: 500_000\n")
                       .config;
  EXPECT_DOUBLE_EQ(c.optim.lr, 3e-4);
  EXPECT_DOUBLE_EQ(c.optim.beta2, 1.0);
  EXPECT_TRUE(std::isinf(c.optim.grad_clip));
  EXPECT_DOUBLE_EQ(c.model.norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(c.attention.rope_theta, 500000.0);
}

TEST(ConfigTypes, FloatErrors) {
  EXPECT_EQ(only_message(load_text_error("optim:\n  lr: fast\n")),
            "optim.lr: expects a number, got 'fast'");
  EXPECT_EQ(only_message(load_text_error("optim:\n  beta1: 1.5\n")),
            "optim.beta1: 1.5 is out of range; allowed 0.0 .. 1.0");
  EXPECT_TRUE(contains(only_message(load_text_error("optim:\n  lr: .nan\n")), "expects a number"));
}

TEST(ConfigTypes, BoolSpellings) {
  const std::vector<std::pair<std::string, bool>> cases = {
      {"true", true}, {"false", false}, {"yes", true},  {"no", false},
      {"on", true},   {"off", false},   {"True", true}, {"NO", false}};
  for (const auto& [text, expected] : cases) {
    // One key defaults to true and one to false, so every spelling changes one of them.
    const Config c =
        load_text("model:\n  tie_embeddings: " + text + "\nattention:\n  qk_norm: " + text + "\n")
            .config;
    EXPECT_EQ(c.model.tie_embeddings, expected) << text;
    EXPECT_EQ(c.attention.qk_norm, expected) << text;
  }
  EXPECT_EQ(only_message(load_text_error("model:\n  tie_embeddings: maybe\n")),
            "model.tie_embeddings: expects true or false, got 'maybe'");
  EXPECT_EQ(only_message(load_text_error("model:\n  tie_embeddings: 1\n")),
            "model.tie_embeddings: expects true or false, got '1'");
}

TEST(ConfigTypes, Strings) {
  const Config c = load_text(
                       "run:\n  dir: runs/x\n  name: \"it's\"\n"
                       "data:\n  tokenizer: null\n  val: 'null'\n  train: 123\n")
                       .config;
  EXPECT_EQ(c.run.dir, "runs/x");
  EXPECT_EQ(c.run.name, "it's");
  EXPECT_EQ(c.data.tokenizer, "");  // null clears a string
  EXPECT_EQ(c.data.val, "null");    // a quoted null is text
  EXPECT_EQ(c.data.train, "123");
  EXPECT_EQ(only_message(load_text_error("run:\n  name: [a, b]\n")),
            "run.name: expects a string, got a list");
}

TEST(ConfigTypes, Enums) {
  EXPECT_EQ(load_text("attention:\n  kind: mla\n").config.attention.kind, "mla");
  EXPECT_EQ(load_text("schedule:\n  kind: wsd\n").config.schedule.kind, "wsd");
  EXPECT_EQ(
      only_message(load_text_error("schedule:\n  kind: cosin\n")),
      "schedule.kind: 'cosin' is not one of cosine | wsd | constant (did you mean 'cosine'?)");
  EXPECT_EQ(only_message(load_text_error("attention:\n  kind: transformer\n")),
            "attention.kind: 'transformer' is not one of mha | gqa | mla | cca | ccgqa | swa");
  // Enums are case-sensitive.
  EXPECT_TRUE(contains(only_message(load_text_error("train:\n  device: CPU\n")),
                       "'CPU' is not one of auto | cpu | cuda"));
}

TEST(ConfigTypes, OptionalInt) {
  EXPECT_EQ(load_text("attention:\n  mla:\n    q_lora_rank: 384\n")
                .config.attention.settings.optional_integer("attention.mla.q_lora_rank"),
            std::optional<int64_t>(384));
  for (const std::string null_text : {"null", "~", ""}) {
    const LoadedConfig loaded =
        load_text("attention:\n  mla:\n    q_lora_rank: " + null_text + "\n");
    EXPECT_FALSE(
        loaded.config.attention.settings.optional_integer("attention.mla.q_lora_rank").has_value())
        << null_text;
    EXPECT_EQ(loaded.origins.count("attention.mla.q_lora_rank"), 1u) << null_text;
  }
  // null after a value (here: --set after the file) clears it again.
  EXPECT_FALSE(
      load_text("attention:\n  mla:\n    q_lora_rank: 384\n", {"attention.mla.q_lora_rank=null"})
          .config.attention.settings.optional_integer("attention.mla.q_lora_rank")
          .has_value());
  EXPECT_EQ(only_message(load_text_error("attention:\n  mla:\n    q_lora_rank: 0\n")),
            "attention.mla.q_lora_rank: 0 is out of range; allowed null | 1 .. 1048576");
  EXPECT_EQ(only_message(load_text_error("attention:\n  mla:\n    q_lora_rank: big\n")),
            "attention.mla.q_lora_rank: expects an integer or null, got 'big'");
}

// --- Structure errors ---

TEST(ConfigStructure, UnknownKeysSuggestTheNearestKey) {
  const ConfigError e = load_text_error("model:\n  d_modle: 512\ntrian:\n  steps: 3\n");
  ASSERT_EQ(e.diagnostics().size(), 2u) << e.what();
  EXPECT_EQ(e.diagnostics()[0].message,
            "unknown key 'model.d_modle' (did you mean 'model.d_model'?)");
  EXPECT_EQ(e.diagnostics()[0].origin.describe(), "test.yaml:2:3");
  EXPECT_EQ(e.diagnostics()[1].message, "unknown key 'trian' (did you mean 'train'?)");
  EXPECT_EQ(e.diagnostics()[1].origin.describe(), "test.yaml:3:1");
}

TEST(ConfigStructure, SectionGivenAScalar) {
  EXPECT_EQ(only_message(load_text_error("model: 768\n")),
            "'model' is a section: expected a mapping of its keys (e.g. model.d_model)");
  EXPECT_EQ(only_message(load_text_error("attention:\n  cca: 4\n")),
            "'attention.cca' is a section: expected a mapping of its keys (e.g. "
            "attention.cca.q_compression)");
}

TEST(ConfigStructure, TopLevelMustBeAMapping) {
  EXPECT_TRUE(contains(only_message(load_text_error("- model\n- train\n")),
                       "the top level must be a mapping"));
}

TEST(ConfigStructure, SyntaxErrorNamesFileLineAndColumn) {
  ScratchDir dir;
  const std::string path = dir.write("broken.yaml", "model:\n  d_model: 512\n  n_layers: : 3\n");
  const ConfigError e = load_file_error(path);
  ASSERT_EQ(e.diagnostics().size(), 1u) << e.what();
  const Diagnostic& d = e.diagnostics()[0];
  EXPECT_EQ(d.origin.file, path);
  EXPECT_EQ(d.origin.line, 3);
  EXPECT_EQ(d.origin.column, 13);
  EXPECT_TRUE(contains(d.message, "YAML syntax error")) << d.message;
  EXPECT_TRUE(contains(e.what(), path + ":3:13: YAML syntax error")) << e.what();
}

TEST(ConfigStructure, AllProblemsOfAFileAreReportedTogether) {
  ScratchDir dir;
  const std::string path = dir.write("three.yaml",
                                     "model:\n"
                                     "  d_modle: 512\n"      // 2: unknown key
                                     "  n_layers: twelve\n"  // 3: wrong type
                                     "train:\n"
                                     "  micro_batch_size: 0\n");  // 5: out of range
  const ConfigError e = load_file_error(path);
  ASSERT_EQ(e.diagnostics().size(), 3u) << e.what();
  EXPECT_EQ(e.diagnostics()[0].origin.line, 2);
  EXPECT_TRUE(contains(e.diagnostics()[0].message, "unknown key 'model.d_modle'"));
  EXPECT_EQ(e.diagnostics()[1].origin.line, 3);
  EXPECT_TRUE(contains(e.diagnostics()[1].message, "model.n_layers: expects an integer"));
  EXPECT_EQ(e.diagnostics()[2].origin.line, 5);
  EXPECT_TRUE(contains(e.diagnostics()[2].message, "train.micro_batch_size: 0 is out of range"));
  EXPECT_TRUE(contains(e.what(), "invalid configuration '" + path + "' (3 errors):")) << e.what();
}

TEST(ConfigStructure, ProblemsAcrossFilesAndOverridesAreReportedTogether) {
  ScratchDir dir;
  const std::string base = dir.write("base.yaml", "model:\n  n_layers: -3\n");
  const std::string run = dir.write("run.yaml", "include: base.yaml\noptim:\n  lr: fast\n");
  LoadOptions options;
  options.overrides = {"train.steps=soon"};
  const ConfigError e = load_file_error(run, options);
  ASSERT_EQ(e.diagnostics().size(), 3u) << e.what();
  EXPECT_EQ(e.diagnostics()[0].origin.file, base);
  EXPECT_EQ(e.diagnostics()[1].origin.file, run);
  EXPECT_EQ(e.diagnostics()[2].origin.describe(), "--set train.steps=soon");
}

TEST(ConfigStructure, MissingFileIsAConfigErrorNamingIt) {
  ScratchDir dir;
  const std::string path = (dir.path() / "nope.yaml").string();
  const ConfigError e = load_file_error(path);
  EXPECT_EQ(only_message(e), "config file '" + path + "' does not exist");
  EXPECT_TRUE(contains(e.what(), path));
}

// --- Includes ---

TEST(ConfigIncludes, ResolveRelativeToTheIncludingFile) {
  ScratchDir dir;
  const std::string base = dir.write("shared/base.yaml",
                                     "model:\n  d_model: 512\n  n_layers: 6\n"
                                     "attention:\n  n_heads: 8\n");
  const std::string run = dir.write("runs/exp/run.yaml",
                                    "include: ../../shared/base.yaml\n"
                                    "model:\n  n_layers: 4\n");
  const LoadedConfig loaded = load_config(run);
  EXPECT_EQ(loaded.config.model.d_model, 512);  // from the include
  EXPECT_EQ(loaded.config.model.n_layers, 4);   // the including file wins
  EXPECT_EQ(loaded.config.attention.n_heads, 8);
  ASSERT_EQ(loaded.files.size(), 2u);
  EXPECT_EQ(loaded.files[0], run);
  EXPECT_TRUE(fs::equivalent(loaded.files[1], base)) << loaded.files[1];
  EXPECT_EQ(loaded.origins.at("model.d_model").line, 2);
  EXPECT_TRUE(fs::equivalent(loaded.origins.at("model.d_model").file, base));
  EXPECT_EQ(loaded.origins.at("model.n_layers").describe(), run + ":3:3");
}

TEST(ConfigIncludes, NestedTwoLevels) {
  ScratchDir dir;
  dir.write(
      "a/b/bottom.yaml",
      "model:\n  d_model: 256\n  n_layers: 2\n  vocab_size: 1000\nattention:\n  n_heads: 4\n");
  dir.write("a/middle.yaml", "include: b/bottom.yaml\nmodel:\n  n_layers: 3\n  vocab_size: 2000\n");
  const std::string top =
      dir.write("top.yaml", "include: a/middle.yaml\nmodel:\n  vocab_size: 3000\n");
  const LoadedConfig loaded = load_config(top);
  EXPECT_EQ(loaded.config.model.d_model, 256);
  EXPECT_EQ(loaded.config.model.n_layers, 3);
  EXPECT_EQ(loaded.config.model.vocab_size, 3000);
  ASSERT_EQ(loaded.files.size(), 3u);
  EXPECT_TRUE(contains(loaded.files[1], "middle.yaml"));
  EXPECT_TRUE(contains(loaded.files[2], "bottom.yaml"));
  EXPECT_TRUE(contains(loaded.origins.at("model.d_model").file, "bottom.yaml"));
  EXPECT_TRUE(contains(loaded.origins.at("model.n_layers").file, "middle.yaml"));
  EXPECT_EQ(loaded.origins.at("model.vocab_size").file, top);
}

TEST(ConfigIncludes, ListFormLaterEntriesWin) {
  ScratchDir dir;
  dir.write("one.yaml", "train:\n  steps: 10\n  seed: 1\n");
  dir.write("two.yaml", "train:\n  steps: 20\n");
  for (const std::string form :
       {"include: [one.yaml, two.yaml]\n", "include:\n  - one.yaml\n  - two.yaml\n"}) {
    const std::string run = dir.write("run.yaml", form + "schedule:\n  warmup_steps: 5\n");
    const LoadedConfig loaded = load_config(run);
    EXPECT_EQ(loaded.config.train.steps, 20) << form;
    EXPECT_EQ(loaded.config.train.seed, 1) << form;
    EXPECT_EQ(loaded.files.size(), 3u) << form;
  }
}

TEST(ConfigIncludes, SharedIncludeIsNotACycle) {
  ScratchDir dir;
  dir.write("common.yaml", "train:\n  seed: 7\n");
  dir.write("left.yaml", "include: common.yaml\n");
  dir.write("right.yaml", "include: common.yaml\n");
  const std::string run = dir.write("run.yaml", "include: [left.yaml, right.yaml]\n");
  EXPECT_EQ(load_config(run).config.train.seed, 7);
}

TEST(ConfigIncludes, CycleIsAnError) {
  ScratchDir dir;
  dir.write("a.yaml", "include: b.yaml\n");
  dir.write("b.yaml", "model:\n  n_layers: 2\ninclude: a.yaml\n");
  const std::string run = (dir.path() / "a.yaml").string();
  const ConfigError e = load_file_error(run);
  EXPECT_EQ(count_messages(e, "include cycle"), 1u) << e.what();
  EXPECT_TRUE(contains(e.what(), "include cycle")) << e.what();
  EXPECT_TRUE(contains(e.what(), "b.yaml:3:10")) << e.what();  // where the cycle closes

  const std::string self = dir.write("self.yaml", "include: self.yaml\n");
  EXPECT_TRUE(contains(load_file_error(self).what(), "include cycle"));
}

TEST(ConfigIncludes, MissingIncludeNamesTheFileAndTheIncludingLine) {
  ScratchDir dir;
  const std::string run = dir.write("run.yaml",
                                    "model:\n  n_layers: 2\n"
                                    "include:\n  - missing-part.yaml\n");
  const ConfigError e = load_file_error(run);
  ASSERT_EQ(e.diagnostics().size(), 1u) << e.what();
  const Diagnostic& d = e.diagnostics()[0];
  EXPECT_EQ(d.origin.file, run);
  EXPECT_EQ(d.origin.line, 4);
  EXPECT_TRUE(contains(d.message, "missing-part.yaml")) << d.message;
  EXPECT_TRUE(contains(d.message, "does not exist")) << d.message;
  EXPECT_TRUE(contains(e.what(), run + ":4:")) << e.what();
}

TEST(ConfigIncludes, ErrorsInsideAnIncludeNameThatFile) {
  ScratchDir dir;
  const std::string base = dir.write("base.yaml", "model:\n  d_model: [512\n");
  const std::string run = dir.write("run.yaml", "include: base.yaml\ntrain:\n  steps: 2000\n");
  const ConfigError e = load_file_error(run);
  ASSERT_EQ(e.diagnostics().size(), 1u) << e.what();
  EXPECT_TRUE(fs::equivalent(e.diagnostics()[0].origin.file, base));
  EXPECT_GT(e.diagnostics()[0].origin.line, 0);
  EXPECT_TRUE(contains(e.diagnostics()[0].message, "YAML syntax error"));
}

TEST(ConfigIncludes, DirectoryIsNotAConfigFile) {
  // A folder is not an empty config: "include: ../shared" (file name forgotten) must not silently
  // drop every setting the include was meant to bring in.
  ScratchDir dir;
  dir.write("shared/base.yaml", "model:\n  n_layers: 2\n");
  const std::string run = dir.write("run.yaml", "include: shared\n");
  const ConfigError e = load_file_error(run);
  EXPECT_TRUE(contains(e.what(), "shared")) << e.what();
  EXPECT_TRUE(contains(e.what(), run + ":1:10")) << e.what();
  const ConfigError top = load_file_error((dir.path() / "shared").string());
  EXPECT_TRUE(contains(top.what(), "shared")) << top.what();
}

TEST(ConfigIncludes, IncludeMustBePaths) {
  EXPECT_TRUE(contains(only_message(load_text_error("include:\n  a: 1\n")),
                       "include: expects a file path or a list of file paths"));
  EXPECT_TRUE(contains(only_message(load_text_error("include:\n  - [a, b]\n")),
                       "include: each entry must be a file path"));
}

// --set overrides

TEST(ConfigOverrides, AreTypedAndAppliedAfterFiles) {
  ScratchDir dir;
  const std::string run = dir.write("run.yaml", "train:\n  steps: 100\n  seed: 5\n");
  LoadOptions options;
  options.overrides = {"train.steps=200",    "model.tie_embeddings=no", "optim.lr=1e-3",
                       "attention.kind=gqa", "attention.n_kv_heads=4",  "run.name=a=b"};
  const LoadedConfig loaded = load_config(run, options);
  EXPECT_EQ(loaded.config.train.steps, 200);
  EXPECT_EQ(loaded.config.train.seed, 5);
  EXPECT_FALSE(loaded.config.model.tie_embeddings);
  EXPECT_DOUBLE_EQ(loaded.config.optim.lr, 1e-3);
  EXPECT_EQ(loaded.config.attention.kind, "gqa");
  EXPECT_EQ(loaded.config.attention.n_kv_heads, 4);
  EXPECT_EQ(loaded.config.run.name, "a=b");  // split at the first '='
  EXPECT_EQ(loaded.origins.at("train.steps").describe(), "--set train.steps=200");
  EXPECT_EQ(loaded.origins.at("train.seed").describe(), run + ":3:3");
}

TEST(ConfigOverrides, LastOneWins) {
  EXPECT_EQ(load_text("", {"train.steps=500", "train.steps=600"}).config.train.steps, 600);
}

TEST(ConfigOverrides, AreValidatedLikeFiles) {
  const ConfigError range = load_text_error("", LoadOptions{{"train.steps=-1"}, 1});
  EXPECT_EQ(only_message(range), "train.steps: -1 is out of range; allowed 0 .. max");
  EXPECT_EQ(range.diagnostics()[0].origin.describe(), "--set train.steps=-1");

  const ConfigError type = load_text_error("", LoadOptions{{"model.d_model=wide"}, 1});
  EXPECT_EQ(only_message(type), "model.d_model: expects an integer, got 'wide'");

  // A cross-field rule broken by an override is reported at the override.
  const ConfigError rule = load_text_error("", LoadOptions{{"attention.kind=gqa"}, 1});
  EXPECT_TRUE(contains(only_message(rule), "kind gqa needs attention.n_kv_heads"));
  EXPECT_EQ(rule.diagnostics()[0].origin.describe(), "--set attention.kind=gqa");

  const ConfigError empty = load_text_error("", LoadOptions{{"data.train="}, 1});
  EXPECT_TRUE(contains(only_message(empty), "data.train is empty"));
}

TEST(ConfigOverrides, UnknownKeySuggestsOne) {
  const ConfigError e = load_text_error("", LoadOptions{{"train.lr=1e-3"}, 1});
  EXPECT_EQ(only_message(e), "unknown key 'train.lr' (did you mean 'optim.lr'?)");
  EXPECT_EQ(e.diagnostics()[0].origin.describe(), "--set train.lr=1e-3");
  EXPECT_EQ(only_message(load_text_error("", LoadOptions{{"model.d_modle=512"}, 1})),
            "unknown key 'model.d_modle' (did you mean 'model.d_model'?)");
}

TEST(ConfigOverrides, MalformedOverrides) {
  for (const std::string text : {"model.d_model", "=5", ""}) {
    EXPECT_EQ(only_message(load_text_error("", LoadOptions{{text}, 1})),
              "--set expects key.path=value")
        << text;
  }
  EXPECT_EQ(only_message(load_text_error("", LoadOptions{{"attention.cca=4"}, 1})),
            "'attention.cca' is a section; --set takes one key, e.g. attention.cca.<key>=value");
  EXPECT_TRUE(contains(only_message(load_text_error("", LoadOptions{{"model=1"}, 1})),
                       "'model' is a section"));
  EXPECT_TRUE(contains(only_message(load_text_error("", LoadOptions{{"model.d_model=[1"}, 1})),
                       "value is not valid YAML"));
}

// --- Origins ---

TEST(ConfigOrigins, ExplicitKeysOnly) {
  ScratchDir dir;
  const std::string run = dir.write("run.yaml",
                                    "# comment\n"
                                    "model:\n"
                                    "  d_model: 512\n"
                                    "attention:\n"
                                    "  n_heads: 8\n"
                                    "  cca:\n"
                                    "    convs: 1\n");
  LoadOptions options;
  options.overrides = {"train.steps=5", "schedule.warmup_steps=0"};
  const LoadedConfig loaded = load_config(run, options);
  EXPECT_EQ(loaded.origins.size(), 5u);
  const Origin& d_model = loaded.origins.at("model.d_model");
  EXPECT_EQ(d_model.file, run);
  EXPECT_EQ(d_model.line, 3);
  EXPECT_EQ(d_model.column, 3);
  EXPECT_EQ(loaded.origins.at("attention.n_heads").describe(), run + ":5:3");
  EXPECT_EQ(loaded.origins.at("attention.cca.convs").describe(), run + ":7:5");
  EXPECT_EQ(loaded.origins.at("train.steps").describe(), "--set train.steps=5");
  EXPECT_EQ(loaded.origins.count("model.n_layers"), 0u);
  EXPECT_EQ(Origin{}.describe(), "(default)");
}

TEST(ConfigOrigins, TextLoadsUseTheGivenName) {
  const LoadedConfig loaded = load_config_text("model:\n  n_layers: 2\n", "inline.yaml");
  EXPECT_EQ(loaded.origins.at("model.n_layers").describe(), "inline.yaml:2:3");
  EXPECT_TRUE(contains(expect_config_error([] {
                         load_config_text("model:\n  n_layers: 0\n", "inline.yaml");
                       }).what(),
                       "invalid configuration 'inline.yaml' (1 error):\n  inline.yaml:2:3: "));
}

// --- Rendering ---

const char* const kRichConfig =
    "model:\n  d_model: 512\n  n_layers: 6\n  vocab_size: 32_000\n  tie_embeddings: no\n"
    "  norm_eps: 1e-6\n"
    "attention:\n  kind: ccgqa\n  n_heads: 8\n  rope_fraction: 0.5\n  rope_theta: 5e5\n"
    "  mla:\n    q_lora_rank: 96\n"
    "  cca:\n    q_compression: 2\n    kv_compression: 4\n    temperature: raw\n"
    "moe:\n  n_experts: 8\n  top_k: 2\n  every: 2\n"
    "optim:\n  lr: 3.0e-4\n  grad_clip: .inf\n"
    "data:\n  train: \"data/my shards/*.bin\"\n  tokenizer: null\n  val: 'null'\n"
    "train:\n  steps: 500\n  seq_len: 256\n  device: cpu\n"
    "run:\n  dir: runs/rt\n  name: \"it's # not a comment\"\n";

TEST(ConfigRender, RoundTripGivesIdenticalText) {
  ScratchDir dir;
  const std::string first_path = dir.write("first.yaml", kRichConfig);
  const LoadedConfig first = load_config(first_path);
  const std::string rendered = render_config_yaml(first, /*with_origins=*/true);
  const std::string second_path = dir.write("second.yaml", rendered);
  const LoadedConfig second = load_config(second_path);
  EXPECT_EQ(render_config_yaml(second, false), render_config_yaml(first, false));
  // Every key was written explicitly, so every key now has an origin in the second file.
  EXPECT_EQ(second.origins.size(), config_keys().size());
  EXPECT_EQ(second.config.run.name, "it's # not a comment");
  EXPECT_EQ(second.config.data.val, "null");
  EXPECT_EQ(second.config.data.tokenizer, "");
  EXPECT_EQ(second.config.attention.settings.optional_integer("attention.mla.q_lora_rank"),
            std::optional<int64_t>(96));
  EXPECT_FALSE(second.config.model.tie_embeddings);
  EXPECT_TRUE(std::isinf(second.config.optim.grad_clip));
  // The rendering is a fixed point: rendering the re-read config and reading it again changes
  // nothing either.
  const LoadedConfig third =
      load_config(dir.write("third.yaml", render_config_yaml(second, false)));
  EXPECT_EQ(render_config_yaml(third, false), render_config_yaml(first, false));
}

TEST(ConfigRender, RoundTripKeepsFullFloatPrecision) {
  // The resolved config is what a run folder keeps; reading it back must give the same run.
  const LoadedConfig first = load_text(
      "optim:\n  lr: 0.000123456789\nattention:\n  rope_theta: 1234567\n"
      "distributed:\n  timeout_s: 1234.5678\n");
  ScratchDir dir;
  const LoadedConfig second = load_config(dir.write("r.yaml", render_config_yaml(first, true)));
  EXPECT_EQ(second.config.optim.lr, first.config.optim.lr)
      << std::setprecision(17) << "loaded " << first.config.optim.lr << ", re-read "
      << second.config.optim.lr;
  EXPECT_EQ(second.config.attention.rope_theta, first.config.attention.rope_theta)
      << std::setprecision(17) << "loaded " << first.config.attention.rope_theta << ", re-read "
      << second.config.attention.rope_theta;
  EXPECT_EQ(second.config.distributed.timeout_s, first.config.distributed.timeout_s)
      << std::setprecision(17) << "loaded " << first.config.distributed.timeout_s << ", re-read "
      << second.config.distributed.timeout_s;
}

TEST(ConfigRender, OriginCommentsOnExplicitKeysOnly) {
  ScratchDir dir;
  const std::string run = dir.write("run.yaml", "attention:\n  kind: cca\n  rope_fraction: 0.5\n");
  LoadOptions options;
  options.overrides = {"train.steps=50", "schedule.warmup_steps=5"};
  const std::string text = render_config_yaml(load_config(run, options), true);
  EXPECT_TRUE(contains(text, "\n  kind: cca  # " + run + ":2:3\n")) << text;
  EXPECT_TRUE(contains(text, "\n  rope_fraction: 0.5  # " + run + ":3:3\n")) << text;
  EXPECT_TRUE(contains(text, "\n  steps: 50  # --set train.steps=50\n")) << text;
  EXPECT_TRUE(contains(text, "\n  d_model: 768\n")) << text;  // default: no comment
  EXPECT_FALSE(contains(render_config_yaml(load_config(run, options), false), "#"));
}

TEST(ConfigRender, ListsEveryKeyUnderItsSection) {
  LoadedConfig defaults;
  defaults.config = default_config();
  const std::string text = render_config_yaml(defaults, false);
  EXPECT_EQ(text.rfind("model:\n  d_model: 768\n", 0), 0u) << text;
  EXPECT_TRUE(contains(text, "\nattention:\n  kind: mha\n"));
  EXPECT_TRUE(contains(text, "\n  mla:\n    q_lora_rank: null\n"));
  EXPECT_TRUE(contains(text, "\n  cca:\n    q_compression: 4\n"));
  EXPECT_TRUE(contains(text, "\nrun:\n  dir: 'runs/default'\n  name: ''\n"));
  for (const KeySpec& key : config_keys()) {
    const std::string leaf = key.path.substr(key.path.rfind('.') + 1);
    EXPECT_TRUE(contains(text, " " + leaf + ": ")) << key.path;
  }
}

TEST(ConfigRender, HelpListsEveryKeyWithItsDefault) {
  const std::string help = render_config_help();
  for (const KeySpec& key : config_keys()) {
    const std::string entry =
        "  " + key.path + "  (" + key.type_name() + ", default " + key.default_text();
    EXPECT_TRUE(contains(help, entry)) << entry;
    EXPECT_TRUE(contains(help, key.help)) << key.path;
  }
  EXPECT_TRUE(contains(help, "  attention.cca.q_compression  (int, default 4; allowed 1 .. 1024)"));
  EXPECT_TRUE(contains(help,
                       "  attention.kind  (enum, default mha; allowed mha | gqa | mla | cca "
                       "| ccgqa | swa)"));
  EXPECT_TRUE(contains(help, "  model.tie_embeddings  (bool, default true)\n"));
  EXPECT_TRUE(contains(help, "  attention.mla.q_lora_rank  (int or null, default null"));
  EXPECT_TRUE(contains(help, "  run.dir  (string, default 'runs/default')"));
  EXPECT_EQ(help.rfind("model: transformer shape", 0), 0u);
  EXPECT_TRUE(contains(help, "\nmoe: Mixture-of-Experts feed-forward layers\n"));
}

}  // namespace
}  // namespace cca
