// config.json and generation_config.json of an export, per target class, and the way back: a
// Hugging Face config.json as our config keys (import). Every field that changes what the class
// computes is written explicitly, never left to the class's default. Torch-free.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "interop/hf_target.h"
#include "util/json.h"

namespace cca::interop {

struct SpecialTokens {
  std::optional<int64_t> bos, eos;
};

// config.json for `target`; `dtype` is "float32" or "bfloat16".
Json hf_config(HfTarget target, const Config& config, const SpecialTokens& tokens,
               const std::string& dtype);
// The model, attention and moe keys with their resolved values, as nested objects (the
// remote-code config's "cca_train_config").
Json resolved_model_sections(const Config& config);
// generation_config.json: greedy by default, stopping at EOS (and BOS, as cca-generate does).
Json generation_config(const SpecialTokens& tokens);

// The other way: `--set`-style "key=value" overrides that make our config compute the model of
// an HF config.json (a stock class we map, or our remote-code folder). Throws cca::Error naming
// the field and value of anything we cannot compute (rope scaling, sliding windows, biases, ...).
std::vector<std::string> overrides_from_hf(const Json& hf, const std::string& source);

}  // namespace cca::interop
