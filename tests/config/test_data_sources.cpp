// data.train / data.val as lists of sources and data.stages: parsing, names, rendering (and
// reading the rendering back), --set, and every bad input as one clear message naming the key.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/data_sources.h"
#include "config/loader.h"
#include "config_test_util.h"

namespace cca {
namespace {

using testutil::contains;
using testutil::load_text_error;

const char* const kMixture =
    "train: {steps: 100, seq_len: 16, micro_batch_size: 2}\n"
    "data:\n"
    "  train:\n"
    "    - {name: web, path: data/web, weight: 3}\n"
    "    - {path: 'data/code/train_*.bin', weight: 1}\n"
    "  val:\n"
    "    - {name: web, path: data/web}\n"
    "    - {name: code, path: data/code}\n"
    "  stages:\n"
    "    - {name: broad, start_step: 0, weights: {web: 3, train: 1}}\n"
    "    - {name: focus, start_tokens: 1600, weights: {web: 1, train: 3}}\n";

std::string with(const std::string& replace, const std::string& by) {
  std::string text = kMixture;
  const size_t at = text.find(replace);
  EXPECT_NE(at, std::string::npos) << replace;
  return text.replace(at, replace.size(), by);
}

std::string all_messages(const ConfigError& e) {
  std::string out;
  for (const Diagnostic& d : e.diagnostics()) out += d.origin.describe() + " " + d.message + "\n";
  return out;
}

TEST(DataSources, ListsParseWithNamesFromPathsAndStagesInTokens) {
  const Config c = load_config_text(kMixture, "mix.yaml").config;
  ASSERT_EQ(c.data.train_sources.size(), 2u);
  EXPECT_EQ(c.data.train_sources[0].name, "web");
  EXPECT_EQ(c.data.train_sources[1].name, "train");  // from 'train_*.bin'
  EXPECT_EQ(c.data.train_sources[1].weight, 1.0);
  EXPECT_EQ(c.data.train, "data/web");  // the first source: where tools look for the manifest
  ASSERT_EQ(c.data.val_sources.size(), 2u);
  EXPECT_EQ(c.data.val_sources[1].path, "data/code");
  ASSERT_EQ(c.data.stages.size(), 2u);
  EXPECT_EQ(c.data.stages[1].start_tokens, 1600);
  EXPECT_EQ(c.data.stages[1].weights[1].weight, 3.0);
  EXPECT_EQ(c.data.on_exhausted, "wrap");
}

TEST(DataSources, RenderingReadsBackToTheSameConfig) {
  const LoadedConfig first = load_config_text(kMixture, "mix.yaml");
  const std::string yaml = render_config_yaml(first, false);
  EXPECT_TRUE(contains(yaml, "train: [{name: web, path: 'data/web', weight: 3.0}, {name: train"))
      << yaml;
  const LoadedConfig second = load_config_text(yaml, "rendered.yaml");
  EXPECT_EQ(render_config_yaml(second, false), yaml);
}

TEST(DataSources, SetTakesAListAndAPlainPathStillWorks) {
  LoadOptions options;
  options.overrides = {"data.train=[{name: a, path: x, weight: 1}, {name: b, path: y, weight: 2}]"};
  const Config c = load_config_text("", "empty.yaml", options).config;
  ASSERT_EQ(c.data.train_sources.size(), 2u);
  EXPECT_EQ(c.data.train_sources[1].weight, 2.0);
  options.overrides.push_back("data.train=shards/*.bin");
  const Config back = load_config_text("", "empty.yaml", options).config;
  EXPECT_TRUE(back.data.train_sources.empty());
  EXPECT_EQ(back.data.train, "shards/*.bin");
}

TEST(DataSources, BadSourcesNameTheKeyItemAndValue) {
  const std::string zero = all_messages(load_text_error(with("weight: 3", "weight: 0")));
  EXPECT_TRUE(contains(zero, "mix.yaml") || contains(zero, "test.yaml")) << zero;
  EXPECT_TRUE(contains(zero, "data.train: item 1 (line 4) 'web': weight 0 must be a number > 0"))
      << zero;
  const std::string negative = all_messages(load_text_error(with("weight: 1", "weight: -2")));
  EXPECT_TRUE(contains(negative, "weight -2 must be a number > 0")) << negative;
  const std::string missing = all_messages(load_text_error(with(", weight: 1", "")));
  EXPECT_TRUE(contains(missing, "weight is missing")) << missing;
  const std::string unknown = all_messages(load_text_error(with("weight: 1", "wieght: 1")));
  EXPECT_TRUE(contains(unknown, "unknown field 'wieght' (allowed: name, path, weight)")) << unknown;
  const std::string twice = all_messages(
      load_text_error(with("name: web, path: data/web, weight", "name: train, path: a, weight")));
  EXPECT_TRUE(contains(twice, "two sources are named 'train'")) << twice;
  const std::string val = all_messages(
      load_text_error(with("{name: code, path: data/code}", "{name: code, path: c, weight: 1}")));
  EXPECT_TRUE(
      contains(val, "data.val: item 2 (line 8): unknown field 'weight' (allowed: name, path)"))
      << val;
  const std::string bad_name = all_messages(load_text_error(with("name: web,", "name: 'w b',")));
  EXPECT_TRUE(contains(bad_name, "name 'w b' is not a word")) << bad_name;
}

TEST(DataSources, BadStagesNameTheStageAndTheProblem) {
  const std::string unknown = all_messages(load_text_error(with("train: 3}", "trian: 3}")));
  EXPECT_TRUE(contains(unknown,
                       "data.stages[2] 'focus': weights name unknown source 'trian' "
                       "(data.train's sources: web, train)"))
      << unknown;
  const std::string late =
      all_messages(load_text_error(with("start_tokens: 1600", "start_step: 100")));
  EXPECT_TRUE(contains(late,
                       "data.stages[2] 'focus' starts at step 100, at or after "
                       "train.steps = 100"))
      << late;
  const std::string gap = all_messages(load_text_error(with("start_step: 0", "start_step: 5")));
  EXPECT_TRUE(contains(gap, "the first stage must start at step 0")) << gap;
  // 1600 tokens are step 50 (32 tokens a step): a stage at step 50 before it overlaps.
  const std::string overlap =
      all_messages(load_text_error(with("start_step: 0, weights: {web: 3, train: 1}}\n",
                                        "start_step: 0, weights: {web: 3, train: 1}}\n"
                                        "    - {name: mid, start_step: 50, weights: {web: 1}}\n")));
  EXPECT_TRUE(contains(overlap,
                       "data.stages[3] 'focus' starts at step 50, not after the previous "
                       "stage's start 50"))
      << overlap;
  const std::string both = all_messages(
      load_text_error(with("start_tokens: 1600", "start_tokens: 1600, start_step: 3")));
  EXPECT_TRUE(contains(both, "give exactly one of start_step and start_tokens")) << both;
  const std::string zeros = all_messages(load_text_error(with("{web: 1, train: 3}", "{web: 0}")));
  EXPECT_TRUE(contains(zeros, "every weight is 0")) << zeros;
  const std::string single =
      all_messages(load_text_error("data: {stages: [{start_step: 0, weights: {a: 1}}]}\n"));
  EXPECT_TRUE(contains(single, "data.stages needs data.train as a list of named sources"))
      << single;
  const std::string exhausted = all_messages(load_text_error("data: {on_exhausted: stop}\n"));
  EXPECT_TRUE(contains(exhausted, "'stop' is not one of wrap | error")) << exhausted;
}

// The focus stage at 32 tokens a sequence, its tokens per step kept or scaled.
Config with_focus_seq_len(const std::string& fields) {
  return load_config_text(with("start_tokens: 1600,", "start_tokens: 1600, " + fields), "mix.yaml")
      .config;
}

TEST(DataSources, StageSeqLenKeepsOrScalesTheTokensPerStep) {
  const Config keep = with_focus_seq_len("seq_len: 32,");
  const DataStage& focus = keep.data.stages[1];
  EXPECT_EQ(stage_seq_len(focus, keep), 32);
  EXPECT_EQ(stage_seq_len(keep.data.stages[0], keep), 16);  // train.seq_len
  EXPECT_EQ(stage_micro_batch_size(focus, keep), 1);        // 2 x 16 tokens kept
  EXPECT_EQ(stage_tokens_per_step(focus, keep, 2), 64);
  const Config scale = with_focus_seq_len("seq_len: 32, tokens_per_step: scale,");
  EXPECT_EQ(stage_micro_batch_size(scale.data.stages[1], scale), 2);
  EXPECT_EQ(stage_tokens_per_step(scale.data.stages[1], scale, 1), 64);
  // The rendering carries the new fields and reads back to the same stages.
  const LoadedConfig loaded = load_config_text(
      with("start_tokens: 1600,", "start_tokens: 1600, seq_len: 32, tokens_per_step: scale,"),
      "mix.yaml");
  const std::string yaml = render_config_yaml(loaded, false);
  EXPECT_TRUE(contains(yaml, "seq_len: 32, tokens_per_step: scale}")) << yaml;
  const Config again = load_config_text(yaml, "again.yaml").config;
  EXPECT_EQ(again.data.stages[1].seq_len, 32);
  EXPECT_EQ(again.data.stages[1].tokens_per_step, "scale");
  EXPECT_EQ(again.data.stages[0].seq_len, 0);
}

TEST(DataSources, StartTokensCountEachEarlierStageAtItsOwnTokensPerStep) {
  // broad: 32 tokens a step for 10 steps (320 tokens); long: 64 a step, so 960 tokens are
  // reached 10 steps later, at step 20 (at broad's 32 a step it would be step 30).
  const Config c =
      load_config_text(with("{name: focus, start_tokens: 1600,",
                            "{name: long, start_step: 10, seq_len: 32, tokens_per_step: scale, "
                            "weights: {web: 1}}\n    - {name: focus, start_tokens: 960,"),
                       "mix.yaml")
          .config;
  EXPECT_EQ(stage_start_steps(c, 1), (std::vector<int64_t>{0, 10, 20}));
}

TEST(DataSources, BadStageSeqLenNamesTheStageAndTheRule) {
  const auto error_of = [](const std::string& fields, const std::string& more = "") {
    return all_messages(
        load_text_error(more + with("start_tokens: 1600,", "start_tokens: 1600, " + fields)));
  };
  const std::string uneven = error_of("seq_len: 24,");
  EXPECT_TRUE(contains(uneven,
                       "data.stages[2] 'focus': tokens_per_step keep needs seq_len 24 to divide "
                       "train.micro_batch_size x train.seq_len = 2 x 16 = 32"))
      << uneven;
  // scale keeps the micro-batch, so any seq_len goes.
  EXPECT_EQ(with_focus_seq_len("seq_len: 24, tokens_per_step: scale,").data.stages[1].seq_len, 24);
  const std::string rule = error_of("seq_len: 32, tokens_per_step: double,");
  EXPECT_TRUE(contains(rule, "'focus': tokens_per_step double is not allowed (keep:")) << rule;
  const std::string zero = error_of("seq_len: 0,");
  EXPECT_TRUE(contains(zero, "'focus': seq_len must be an integer >= 1")) << zero;
  const std::string too_long = error_of("seq_len: 32,", "model: {max_seq_len: 16}\n");
  EXPECT_TRUE(
      contains(too_long, "data.stages[2] 'focus': seq_len 32 is above model.max_seq_len = 16"))
      << too_long;
  std::string graphs_text = with("start_tokens: 1600,", "start_tokens: 1600, seq_len: 32,");
  graphs_text.insert(graphs_text.find('}'), ", cuda_graphs: true, device: cuda");
  const std::string graphs = all_messages(load_text_error(graphs_text));
  EXPECT_TRUE(contains(graphs,
                       "'focus': seq_len 32 differs from train.seq_len = 16, and "
                       "train.cuda_graphs captures one shape"))
      << graphs;
}

}  // namespace
}  // namespace cca
