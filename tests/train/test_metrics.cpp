// What a mixture adds to the console lines, metrics.jsonl records and TensorBoard scalars: the
// stage, tokens per source and the named validation sets' losses; a plain run's lines stay as
// they were.
#include <gtest/gtest.h>

#include <map>

#include "train/metrics.h"

namespace cca {
namespace {

StepMetrics step_metrics() {
  StepMetrics m;
  m.step = 61;
  m.total_steps = 120;
  m.loss = 4.5;
  m.lr = 3e-3;
  m.grad_norm = 0.5;
  m.tokens_per_s = 2000;
  m.memory_gib = 1;
  return m;
}

std::map<std::string, double> by_tag(const std::vector<tensorboard::Scalar>& scalars) {
  std::map<std::string, double> out;
  for (const tensorboard::Scalar& s : scalars) out[s.tag] = s.value;
  return out;
}

TEST(MixtureMetrics, StepLineAndRecordCarryTheStageAndTokensPerSource) {
  StepMetrics m = step_metrics();
  const std::string plain = render_step_line(m);
  EXPECT_EQ(plain.find("stage"), std::string::npos) << plain;
  EXPECT_EQ(step_record(m).find("tokens/web"), nullptr);
  m.stage = "focus";
  m.source_tokens = {{"web", 1024}, {"code", 3072}};
  const std::string line = render_step_line(m);
  EXPECT_EQ(line.substr(line.size() - 14), " | stage focus") << line;
  const Json record = step_record(m);
  EXPECT_EQ(record.at("stage", "r").as_string("stage"), "focus");
  EXPECT_EQ(record.at("tokens/code", "r").as_int("tokens/code"), 3072);
  const auto scalars = by_tag(tensorboard_scalars(record));
  EXPECT_EQ(scalars.at("train/tokens/web"), 1024);
  EXPECT_EQ(scalars.count("train/stage"), 0u);
}

TEST(MixtureMetrics, EvalLineAndRecordCarryEachNamedSet) {
  EvalMetrics m{60, 4.25, 16384, 0.9, 122880, 30.0, {}};
  EXPECT_EQ(render_eval_line(m), "eval step 60: val loss 4.2500, ppl 70.11 (16384 tokens, 0.9 s)");
  EXPECT_EQ(eval_record(m).find("val_loss/web"), nullptr);
  m.sets = {{"glosses", 4.0, 8192}, {"articles", 4.5, 8192}};
  EXPECT_EQ(render_eval_line(m),
            "eval step 60: val loss 4.2500, ppl 70.11 (16384 tokens, 0.9 s); glosses 4.0000, "
            "articles 4.5000");
  const Json record = eval_record(m);
  EXPECT_EQ(record.at("val_loss/articles", "r").as_double("v"), 4.5);
  EXPECT_EQ(record.at("val_tokens/glosses", "r").as_int("v"), 8192);
  const auto scalars = by_tag(tensorboard_scalars(record));
  EXPECT_EQ(scalars.at("eval/loss"), 4.25);
  EXPECT_EQ(scalars.at("eval/loss/glosses"), 4.0);
  EXPECT_EQ(scalars.at("eval/loss/articles"), 4.5);
}

}  // namespace
}  // namespace cca
