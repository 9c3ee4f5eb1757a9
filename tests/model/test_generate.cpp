// Generation: greedy decoding through each variant's cache equals the argmax of full forward
// passes, and the samplers keep to their top-k / top-p sets with the right frequencies.
#include <gtest/gtest.h>

#include <ATen/CPUGeneratorImpl.h>

#include "model/generate.h"
#include "model/model_test_util.h"

namespace cca {
namespace {

class Generation : public ::testing::TestWithParam<ModelCase> {};

TEST_P(Generation, GreedyEqualsArgmaxOfRepeatedFullForwardPasses) {
  auto model = make_model(tiny_config(GetParam()), at::kDouble);
  model->eval();
  std::vector<int32_t> sequence = {3, 17, 42, 5, 9};
  SamplingOptions greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = 12;
  const std::vector<int32_t> generated = generate(*model, sequence, greedy);
  ASSERT_EQ(generated.size(), 12u);
  at::NoGradGuard no_grad;
  for (int32_t token : generated) {
    const std::vector<int64_t> ids(sequence.begin(), sequence.end());
    const at::Tensor logits = model->forward(at::tensor(ids, at::kLong).view({1, -1}));
    EXPECT_EQ(token, logits[0][-1].argmax().item<int64_t>()) << "after " << sequence.size();
    sequence.push_back(token);
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, Generation,
                         ::testing::Values(ModelCase{"mha", false}, ModelCase{"gqa", false},
                                           ModelCase{"mla", false}, ModelCase{"cca", false},
                                           ModelCase{"ccgqa", false}, ModelCase{"cca", true},
                                           ModelCase{"swa", false}, ModelCase{"gqa_convs", false}),
                         case_name);

TEST(Sampling, SeedsAreReproducibleAndTopKOneIsGreedy) {
  auto model = make_model(tiny_config({"cca", false}), at::kFloat);
  SamplingOptions options;
  options.max_new_tokens = 20;
  options.seed = 7;
  const auto first = generate(*model, {1, 2, 3}, options);
  EXPECT_EQ(generate(*model, {1, 2, 3}, options), first);
  options.seed = 8;
  EXPECT_NE(generate(*model, {1, 2, 3}, options), first);
  options.top_k = 1;
  SamplingOptions greedy = options;
  greedy.temperature = 0;
  EXPECT_EQ(generate(*model, {1, 2, 3}, options), generate(*model, {1, 2, 3}, greedy));
}

TEST(Sampling, StopsAtAStopToken) {
  auto model = make_model(tiny_config({"mha", false}), at::kFloat);
  SamplingOptions greedy;
  greedy.temperature = 0;
  greedy.max_new_tokens = 8;
  const auto free_run = generate(*model, {4, 5}, greedy);
  greedy.stop_tokens = {free_run[2]};
  const auto stopped = generate(*model, {4, 5}, greedy);
  EXPECT_LE(stopped.size(), 3u);
  EXPECT_EQ(stopped.back(), free_run[2]);
}

// Frequencies of 20000 draws from probabilities [0.5, 0.3, 0.15, 0.05].
std::vector<double> frequencies(const SamplingOptions& options) {
  const at::Tensor logits = at::tensor({0.5, 0.3, 0.15, 0.05}, at::kFloat).log();
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(11);
  std::vector<double> counts(4, 0.0);
  constexpr int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) counts[sample_token(logits, options, generator)] += 1.0 / kDraws;
  return counts;
}

TEST(Sampling, FrequenciesFollowTheDistributionTopKAndTopP) {
  SamplingOptions plain;
  const auto all = frequencies(plain);
  const double expected[] = {0.5, 0.3, 0.15, 0.05};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(all[i], expected[i], 0.015) << i;

  SamplingOptions top_k = plain;
  top_k.top_k = 2;  // renormalised over {0.5, 0.3}
  const auto k2 = frequencies(top_k);
  EXPECT_NEAR(k2[0], 0.625, 0.015);
  EXPECT_EQ(k2[2] + k2[3], 0.0);

  SamplingOptions top_p = plain;
  top_p.top_p = 0.7;  // {0.5, 0.3} reach 0.7; 0.15 starts at mass 0.8 and is dropped
  const auto p07 = frequencies(top_p);
  EXPECT_NEAR(p07[1], 0.375, 0.015);
  EXPECT_EQ(p07[2] + p07[3], 0.0);

  SamplingOptions limited = plain;
  limited.vocab_limit = 3;  // id 3 is padding past the tokenizer's vocabulary
  const auto below3 = frequencies(limited);
  EXPECT_EQ(below3[3], 0.0);
  EXPECT_NEAR(below3[2], 0.15 / 0.95, 0.015);
  const at::Tensor padded_best = at::tensor({0.1f, 0.2f, 5.0f});
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(3);
  SamplingOptions greedy;
  greedy.temperature = 0;
  greedy.vocab_limit = 2;
  EXPECT_EQ(sample_token(padded_best, greedy, generator), 1);

  SamplingOptions cold = plain;
  cold.temperature = 0.25;  // p^4 renormalised: 0.5^4 / Σ = 0.872
  EXPECT_NEAR(frequencies(cold)[0], 0.0625 / (0.0625 + 0.0081 + 0.00050625 + 0.00000625), 0.015);
}

}  // namespace
}  // namespace cca
