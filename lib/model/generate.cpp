#include "model/generate.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <limits>

#include "util/error.h"

namespace cca {

int32_t sample_token(const at::Tensor& logits, const SamplingOptions& options,
                     at::Generator& generator) {
  at::Tensor row = logits.detach().to(at::kCPU, at::kFloat).flatten();
  if (options.vocab_limit > 0 && options.vocab_limit < row.numel()) {
    row = row.slice(0, 0, options.vocab_limit);
  }
  if (options.temperature <= 0 || options.top_k == 1)
    return static_cast<int32_t>(row.argmax().item<int64_t>());
  row = row / options.temperature;
  const float minus_inf = -std::numeric_limits<float>::infinity();
  if (options.top_k > 0 && options.top_k < row.numel()) {
    const at::Tensor kth = std::get<0>(row.topk(options.top_k)).min();
    row = row.masked_fill(row < kth, minus_inf);
  }
  at::Tensor probs = row.softmax(0);
  if (options.top_p < 1.0) {
    auto [sorted, order] = probs.sort(/*dim=*/0, /*descending=*/true);
    // Keep a token when the mass before it is still below p: the most likely one always stays.
    const at::Tensor mass_before = sorted.cumsum(0) - sorted;
    const at::Tensor drop = mass_before >= options.top_p;
    probs = probs.scatter(0, order, sorted.masked_fill(drop, 0.0));
    probs = probs / probs.sum();
  }
  return static_cast<int32_t>(
      at::multinomial(probs, 1, /*replacement=*/false, generator).item<int64_t>());
}

std::vector<int32_t> generate(TransformerImpl& model, const std::vector<int32_t>& prompt,
                              const SamplingOptions& options,
                              const std::function<bool(int32_t)>& on_token) {
  if (prompt.empty()) throw Error("generate: the prompt must hold at least one token");
  at::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const at::Device device = model.embedding.device();
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  ModelCache cache = model.new_cache();
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  at::Tensor input = at::tensor(ids, at::kLong).view({1, -1}).to(device);
  std::vector<int32_t> produced;
  for (int64_t i = 0; i < options.max_new_tokens; ++i) {
    const at::Tensor logits = model.forward(input, &cache);  // [1, T, V]
    const int32_t token = sample_token(logits[0][-1], options, generator);
    produced.push_back(token);
    if (on_token && !on_token(token)) break;
    if (std::find(options.stop_tokens.begin(), options.stop_tokens.end(), token) !=
        options.stop_tokens.end())
      break;
    input =
        at::full({1, 1}, static_cast<int64_t>(token), at::TensorOptions(device).dtype(at::kLong));
  }
  if (was_training) model.train();
  return produced;
}

}  // namespace cca
