#include "interop/hf_target.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "app/startup.h"
#include "config/geometry.h"
#include "config/variants/mla.h"
#include "util/error.h"
#include "util/format.h"
#include "util/strings.h"

namespace cca::interop {
namespace {

struct TargetInfo {
  HfTarget target;
  const char* name;
  const char* architecture;
  const char* model_type;
};

const TargetInfo kTargets[] = {
    {HfTarget::llama, "llama", "LlamaForCausalLM", "llama"},
    {HfTarget::qwen3, "qwen3", "Qwen3ForCausalLM", "qwen3"},
    {HfTarget::phi3, "phi3", "Phi3ForCausalLM", "phi3"},
    {HfTarget::mixtral, "mixtral", "MixtralForCausalLM", "mixtral"},
    {HfTarget::qwen3_moe, "qwen3_moe", "Qwen3MoeForCausalLM", "qwen3_moe"},
    {HfTarget::deepseek_v3, "deepseek_v3", "DeepseekV3ForCausalLM", "deepseek_v3"},
    {HfTarget::remote_code, "remote-code", "CcaTrainForCausalLM", "cca_train"},
};

const TargetInfo& info(HfTarget target) {
  for (const TargetInfo& t : kTargets) {
    if (t.target == target) return t;
  }
  throw Error("interop: unknown target");
}

// What a stock class needs of the model. Each check adds "key = value: reason" when unmet.
struct Needs {
  std::vector<std::string> kinds;  // attention.kind values it computes
  std::optional<bool> qk_norm;     // required QK-norm setting (nullopt: MLA has none)
  bool partial_rope = false;       // rope_fraction < 1 (Phi3) or exactly 1 (the others)
  bool moe = false;                // MoE layers required (true) or forbidden (false)
  std::function<void(const Config&, std::vector<std::string>&)> extra;
};

std::string number(double value) {
  return format("{}", value);
}

void check_attention(const Config& c, const Needs& needs, const std::string& cls,
                     std::vector<std::string>& problems) {
  bool kind_ok = false;
  for (const std::string& kind : needs.kinds) kind_ok = kind_ok || kind == c.attention.kind;
  if (!kind_ok) {
    problems.push_back("attention.kind = " + c.attention.kind + ": " + cls + " computes " +
                       join(needs.kinds, "/") + " attention only");
    return;  // the other attention checks assume the kind fits
  }
  if (needs.qk_norm && *needs.qk_norm != c.attention.qk_norm) {
    problems.push_back(std::string("attention.qk_norm = ") +
                       (c.attention.qk_norm ? "true" : "false") + ": " + cls +
                       (*needs.qk_norm ? " always normalises q and k" : " has no QK-norm"));
  }
  const AttentionGeometry g = attention_geometry(c);
  if (c.attention.kind == "mla") return;  // MLA's rope width is its own key, any value maps
  if (!needs.partial_rope && g.rope_dim != g.head_dim) {
    problems.push_back("attention.rope_fraction = " + number(c.attention.rope_fraction) + ": " +
                       cls + " rotates every dim of a head");
  }
  if (needs.partial_rope) {
    const double factor = static_cast<double>(g.rope_dim) / static_cast<double>(g.head_dim);
    if (g.rope_dim == g.head_dim || g.rope_dim == 0 ||
        static_cast<int64_t>(static_cast<double>(g.head_dim) * factor) != g.rope_dim) {
      problems.push_back("attention.rope_fraction = " + number(c.attention.rope_fraction) + ": " +
                         cls + " is chosen for partial RoPE (0 < rotated dims < head_dim) only");
    }
  }
}

void check_moe(const Config& c, const Needs& needs, const std::string& cls,
               std::vector<std::string>& problems) {
  const bool moe = moe_layer_count(c) > 0;
  if (moe == needs.moe) return;
  problems.push_back("moe.n_experts = " + std::to_string(c.moe.n_experts) + ": " + cls +
                     (needs.moe ? " is a Mixture-of-Experts class" : " has no MoE layers"));
}

void softmax_router(const Config& c, const std::string& cls, std::vector<std::string>& problems) {
  if (c.moe.score != "softmax") {
    problems.push_back("moe.score = " + c.moe.score + ": " + cls + "'s router is a softmax");
  }
  if (c.moe.shared_experts > 0) {
    problems.push_back("moe.shared_experts = " + std::to_string(c.moe.shared_experts) + ": " + cls +
                       " has no shared experts");
  }
  if (c.moe.bias_update_rate > 0) {
    problems.push_back("moe.bias_update_rate = " + number(c.moe.bias_update_rate) + ": " + cls +
                       " has no selection bias (aux-loss-free balancing)");
  }
}

// MoE layers at first_dense_layers, first_dense_layers + 1, ... (every = 1): what DeepSeek-V3's
// first_k_dense_replace and Mixtral (first = 0) express.
void contiguous_moe_layers(const Config& c, const std::string& cls, bool allow_dense_prefix,
                           std::vector<std::string>& problems) {
  if (c.moe.every != 1) {
    problems.push_back("moe.every = " + std::to_string(c.moe.every) + ": " + cls +
                       " puts MoE in every layer after the first dense ones");
  }
  if (!allow_dense_prefix && c.moe.first_dense_layers > 0) {
    problems.push_back("moe.first_dense_layers = " + std::to_string(c.moe.first_dense_layers) +
                       ": " + cls + " has MoE in every layer");
  }
}

Needs needs_of(HfTarget target) {
  const std::vector<std::string> heads = {"mha", "gqa"};
  switch (target) {
    case HfTarget::llama:
      return {heads, false, false, false, nullptr};
    case HfTarget::qwen3:
      return {heads, true, false, false, nullptr};
    case HfTarget::phi3:
      return {heads, false, true, false, nullptr};
    case HfTarget::mixtral:
      return {heads, false, false, true, [](const Config& c, std::vector<std::string>& p) {
                softmax_router(c, "MixtralForCausalLM", p);
                contiguous_moe_layers(c, "MixtralForCausalLM", false, p);
                if (!c.moe.renormalize) {
                  p.push_back(
                      "moe.renormalize = false: MixtralForCausalLM always renormalises "
                      "the top-k weights");
                }
              }};
    case HfTarget::qwen3_moe:
      return {heads, true, false, true, [](const Config& c, std::vector<std::string>& p) {
                softmax_router(c, "Qwen3MoeForCausalLM", p);
              }};
    case HfTarget::deepseek_v3:
      return {{"mla"}, std::nullopt, false, false, nullptr};
    case HfTarget::remote_code:
      break;
  }
  throw Error("interop: no needs for the remote-code target");
}

void check_deepseek(const Config& c, std::vector<std::string>& problems) {
  const std::string cls = "DeepseekV3ForCausalLM";
  if (c.attention.kind == "mla" && c.model.norm_eps != 1e-6) {
    problems.push_back("model.norm_eps = " + number(c.model.norm_eps) + ": " + cls +
                       " normalises the MLA latents with eps 1e-6 whatever rms_norm_eps says");
  }
  if (moe_layer_count(c) == 0) return;  // all-dense: first_k_dense_replace = n_layers
  if (c.moe.score != "sigmoid") {
    problems.push_back("moe.score = " + c.moe.score + ": " + cls + "'s router is a sigmoid");
  }
  if (c.moe.n_experts < 2) {
    problems.push_back("moe.n_experts = " + std::to_string(c.moe.n_experts) + ": " + cls +
                       "'s group routing needs at least 2 experts");
  }
  if (c.moe.shared_experts == 0) {
    problems.push_back("moe.shared_experts = 0: " + cls + " always has a shared expert");
  }
  contiguous_moe_layers(c, cls, true, problems);
}

}  // namespace

std::string target_name(HfTarget target) {
  return info(target).name;
}

HfTarget parse_target(const std::string& name) {
  std::vector<std::string> names;
  for (const TargetInfo& t : kTargets) {
    if (name == t.name) return t.target;
    names.push_back(t.name);
  }
  throw UsageError("--hf-target '" + name + "': unknown (auto, " + join(names, ", ") + ")");
}

std::string architecture(HfTarget target) {
  return info(target).architecture;
}

std::string model_type(HfTarget target) {
  return info(target).model_type;
}

std::optional<HfTarget> target_for_model_type(const std::string& type) {
  for (HfTarget t : stock_targets()) {
    if (type == info(t).model_type) return t;
  }
  return std::nullopt;
}

const std::vector<HfTarget>& stock_targets() {
  static const std::vector<HfTarget> all = {HfTarget::llama,     HfTarget::qwen3,
                                            HfTarget::phi3,      HfTarget::mixtral,
                                            HfTarget::qwen3_moe, HfTarget::deepseek_v3};
  return all;
}

std::vector<std::string> target_problems(HfTarget target, const Config& c) {
  std::vector<std::string> problems;
  if (target == HfTarget::remote_code) return problems;
  const std::string cls = architecture(target);
  // Phi3 and DeepSeek-V3 tie their RoPE scaling to fields of their own (longrope,
  // mscale_all_dim) that no export writes yet; their logits would differ.
  if (c.attention.rope_scaling != "none" &&
      (target == HfTarget::phi3 || target == HfTarget::deepseek_v3)) {
    problems.push_back(
        "attention.rope_scaling = " + c.attention.rope_scaling + ": " + cls +
        " is not exported with scaled RoPE (Llama, Qwen3, Mixtral and Qwen3-MoE are)");
  }
  if (target == HfTarget::deepseek_v3) {
    check_attention(c, needs_of(target), cls, problems);
    check_deepseek(c, problems);
    return problems;
  }
  const Needs needs = needs_of(target);
  check_attention(c, needs, cls, problems);
  check_moe(c, needs, cls, problems);
  if (needs.extra && moe_layer_count(c) > 0 && needs.moe) needs.extra(c, problems);
  return problems;
}

// How far a stock class is from the model: a different attention family or dense/MoE structure
// outweighs any number of settings, so the fallback names the class a user would expect.
size_t distance(HfTarget target, const Config& c, size_t problems) {
  const std::vector<std::string> kinds = target == HfTarget::deepseek_v3
                                             ? std::vector<std::string>{"mla"}
                                             : std::vector<std::string>{"mha", "gqa"};
  const bool kind_fits = std::find(kinds.begin(), kinds.end(), c.attention.kind) != kinds.end();
  const bool moe = moe_layer_count(c) > 0;
  const bool moe_target = target == HfTarget::mixtral || target == HfTarget::qwen3_moe;
  const bool structure_fits = target == HfTarget::deepseek_v3 || moe == moe_target;
  return (kind_fits ? 0 : 1000) + (structure_fits ? 0 : 100) + problems;
}

TargetChoice choose_target(const Config& c) {
  TargetChoice choice;
  size_t nearest = SIZE_MAX;
  for (HfTarget target : stock_targets()) {
    std::vector<std::string> problems = target_problems(target, c);
    if (problems.empty()) return {target, std::nullopt, {}};
    const size_t d = distance(target, c, problems.size());
    if (d < nearest) {
      nearest = d;
      choice.closest = target;
      choice.problems = std::move(problems);
    }
  }
  return choice;
}

}  // namespace cca::interop
