// Autoregressive sampling with each variant's decode state: the prompt is prefilled once into the
// model's cache, then one token at a time is fed back (MLA absorbed, CCA conv and value-shift
// states, the fused CCA prologue on CUDA).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "model/transformer.h"

namespace cca {

struct SamplingOptions {
  int64_t max_new_tokens = 128;
  double temperature = 1.0;  // 0 = greedy (argmax)
  int64_t top_k = 0;         // keep the k most likely tokens; 0 = all
  double top_p = 1.0;        // keep the smallest set whose probability reaches p; 1 = all
  uint64_t seed = 0;
  std::vector<int32_t> stop_tokens;  // end early after sampling one of these (e.g. BOS, EOS)
  // Only ids below this are drawn (the tokenizer's vocabulary, when the model's embedding is
  // padded past it, as GPT-2's 50257 to 50304); 0 = every row of the logits.
  int64_t vocab_limit = 0;
};

// One token from a row of logits [vocab]; `generator` must live on the CPU.
int32_t sample_token(const at::Tensor& logits, const SamplingOptions& options,
                     at::Generator& generator);

// Continues `prompt` (at least one token). `on_token` sees every new id as it is chosen and may
// return false to stop. Returns the new ids (not the prompt). Runs without autograd, in eval mode,
// in the model's own dtype and device.
std::vector<int32_t> generate(TransformerImpl& model, const std::vector<int32_t>& prompt,
                              const SamplingOptions& options,
                              const std::function<bool(int32_t)>& on_token = nullptr);

}  // namespace cca
