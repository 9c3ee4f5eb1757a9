// Which Hugging Face `transformers` class computes a cca-train model exactly (docs/interop.md).
// A stock class is chosen only when every setting of the model has its equivalent there; anything
// else goes to the remote-code folder (our own modeling file, loaded with trust_remote_code), so
// an export never loads into a class that computes something else. Torch-free.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace cca::interop {

enum class HfTarget { llama, qwen3, phi3, mixtral, qwen3_moe, deepseek_v3, remote_code };

// "llama", "qwen3", ..., "remote-code": the names --hf-target takes.
std::string target_name(HfTarget target);
// Parses a --hf-target name; throws cca::UsageError listing the allowed ones.
HfTarget parse_target(const std::string& name);
// The class in config.json's "architectures" ("LlamaForCausalLM", ..., "CcaTrainForCausalLM").
std::string architecture(HfTarget target);
// config.json's "model_type" ("llama", ..., "cca_train").
std::string model_type(HfTarget target);
// The stock target whose model_type this is, nullopt for others (remote code: "cca_train").
std::optional<HfTarget> target_for_model_type(const std::string& model_type);
// Every stock target, in the order auto-selection tries them.
const std::vector<HfTarget>& stock_targets();

// Why `target` would not compute `config` exactly: one "key = value: reason" line per setting it
// lacks; empty when it does (always empty for remote_code).
std::vector<std::string> target_problems(HfTarget target, const Config& config);

struct TargetChoice {
  HfTarget target = HfTarget::remote_code;
  // For a remote-code fallback: the stock class closest to the model and why it does not fit.
  std::optional<HfTarget> closest;
  std::vector<std::string> problems;
};
// The first stock target without problems, else remote_code with the closest one's problems.
TargetChoice choose_target(const Config& config);

}  // namespace cca::interop
