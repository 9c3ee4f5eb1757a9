// overrides_from_hf: a Hugging Face config.json as our config keys (hf_config.h).
#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>

#include "interop/hf_config.h"
#include "util/error.h"
#include "util/strings.h"

namespace cca::interop {
namespace {

// Reads one config.json; every refusal names the file, the field and its value.
class HfFields {
 public:
  HfFields(const Json& hf, std::string source) : hf_(hf), source_(std::move(source)) {}

  const Json* find(const std::string& key) const {
    const Json* value = hf_.find(key);
    return value == nullptr || value->is_null() ? nullptr : value;
  }
  int64_t integer(const std::string& key) const { return at(key).as_int(source_ + ": " + key); }
  int64_t integer(const std::string& key, int64_t fallback) const {
    return find(key) ? integer(key) : fallback;
  }
  double real(const std::string& key, double fallback) const {
    return find(key) ? find(key)->as_double(source_ + ": " + key) : fallback;
  }
  bool flag(const std::string& key, bool fallback) const {
    return find(key) ? find(key)->as_bool(source_ + ": " + key) : fallback;
  }
  std::string text(const std::string& key, const std::string& fallback) const {
    return find(key) ? find(key)->as_string(source_ + ": " + key) : fallback;
  }
  const Json& at(const std::string& key) const {
    const Json* value = find(key);
    if (value == nullptr) throw Error(source_ + ": missing field '" + key + "'");
    return *value;
  }
  [[noreturn]] void refuse(const std::string& key, const std::string& why) const {
    const Json* value = hf_.find(key);
    throw Error(source_ + ": " + key + " = " + (value ? value->dump() : "(absent)") + ": " + why);
  }
  const std::string& source() const { return source_; }

 private:
  const Json& hf_;
  std::string source_;
};

using Overrides = std::vector<std::string>;

void put(Overrides& out, const std::string& key, const std::string& value) {
  out.push_back(key + "=" + value);
}
void put(Overrides& out, const std::string& key, int64_t value) {
  put(out, key, std::to_string(value));
}
void put(Overrides& out, const std::string& key, double value) {
  put(out, key, Json(value).dump());
}
void put(Overrides& out, const std::string& key, bool value) {
  put(out, key, std::string(value ? "true" : "false"));
}

// transformers' linear and yarn rope_parameters as attention.rope_scaling: yarn only with the
// published defaults we compute (β 32/1, temperature 0.1·ln s + 1, rounded ramp boundaries).
void rope_scaling_keys(const HfFields& f, const Json& rope, const std::string& type,
                       Overrides& out) {
  const auto field = [&](const char* key) -> const Json* {
    const Json* value = rope.find(key);
    return value == nullptr || value->is_null() ? nullptr : value;
  };
  const Json* factor = field("factor");
  if (factor == nullptr) f.refuse("rope_parameters", "rope_type " + type + " needs a factor");
  const double s = factor->as_double("rope_parameters.factor");
  if (!(s > 1.0)) f.refuse("rope_parameters", "the scaling factor must be above 1");
  put(out, "attention.rope_scaling", type);
  put(out, "attention.rope_scaling_factor", s);
  if (type != "yarn") return;
  const Json* original = field("original_max_position_embeddings");
  if (original == nullptr) {
    f.refuse("rope_parameters", "yarn needs original_max_position_embeddings");
  }
  const auto is = [&](const char* key, double want) {
    const Json* v = field(key);
    return v == nullptr || std::abs(v->as_double(key) - want) <= 1e-9 * std::abs(want);
  };
  const bool published = is("beta_fast", 32.0) && is("beta_slow", 1.0) &&
                         is("attention_factor", 0.1 * std::log(s) + 1.0) &&
                         field("mscale") == nullptr && field("mscale_all_dim") == nullptr &&
                         (field("truncate") == nullptr || field("truncate")->as_bool("truncate"));
  if (!published) {
    f.refuse("rope_parameters",
             "only YaRN's published settings import (beta_fast 32, beta_slow 1, attention_factor "
             "0.1·ln(factor) + 1, no mscale, truncate true)");
  }
  put(out, "attention.rope_original_max_seq_len",
      original->as_int("rope_parameters.original_max_position_embeddings"));
}

// RoPE: theta, the rotated fraction of each head, and (where `scaling` is given) linear or yarn
// scaling; other scalings, and any scaling where `scaling` is null, are refused.
double rope_theta(const HfFields& f, double& fraction, Overrides* scaling = nullptr) {
  fraction = f.real("partial_rotary_factor", 1.0);
  double theta = f.real("rope_theta", 10000.0);
  if (const Json* rope = f.find("rope_parameters")) {
    const Json* type = rope->find("rope_type");
    const std::string kind =
        type == nullptr || type->is_null() ? "default" : type->as_string("rope_type");
    if (kind != "default") {
      if (scaling == nullptr || (kind != "linear" && kind != "yarn")) {
        f.refuse("rope_parameters",
                 scaling == nullptr
                     ? "only unscaled RoPE (rope_type default) is supported for this class"
                     : "only unscaled, linear or yarn RoPE (rope_type default, linear, yarn) is "
                       "supported");
      }
      rope_scaling_keys(f, *rope, kind, *scaling);
    }
    if (const Json* t = rope->find("rope_theta"); t && !t->is_null())
      theta = t->as_double("rope_theta");
    if (const Json* p = rope->find("partial_rotary_factor"); p && !p->is_null()) {
      fraction = p->as_double("partial_rotary_factor");
    }
  }
  if (f.find("rope_scaling") != nullptr) {
    f.refuse("rope_scaling", "the transformers 4 form is not read; use rope_parameters");
  }
  return theta;
}

void common_model(const HfFields& f, Overrides& out) {
  if (f.text("hidden_act", "silu") != "silu") f.refuse("hidden_act", "our FFN is SwiGLU (silu)");
  for (const char* bias : {"attention_bias", "mlp_bias"}) {
    if (f.flag(bias, false)) f.refuse(bias, "our projections have no biases");
  }
  put(out, "model.d_model", f.integer("hidden_size"));
  put(out, "model.n_layers", f.integer("num_hidden_layers"));
  put(out, "model.vocab_size", f.integer("vocab_size"));
  put(out, "model.norm_eps", f.real("rms_norm_eps", 1e-6));
  put(out, "model.tie_embeddings", f.flag("tie_word_embeddings", false));
  put(out, "model.max_seq_len", f.integer("max_position_embeddings", 0));
  put(out, "model.ffn_hidden", f.integer("intermediate_size"));
}

void head_attention(const HfFields& f, bool qk_norm, bool partial_rope_allowed, Overrides& out) {
  const int64_t heads = f.integer("num_attention_heads");
  const int64_t kv_heads = f.integer("num_key_value_heads", heads);
  double fraction = 1.0;
  // Phi3 (the partial-RoPE class) ties its scaling to longrope fields no export writes.
  const double theta = rope_theta(f, fraction, partial_rope_allowed ? nullptr : &out);
  if (fraction != 1.0 && !partial_rope_allowed) {
    f.refuse("partial_rotary_factor", "this class rotates whole heads");
  }
  put(out, "attention.kind", std::string(kv_heads == heads ? "mha" : "gqa"));
  put(out, "attention.n_heads", heads);
  put(out, "attention.n_kv_heads", kv_heads);
  put(out, "attention.head_dim", f.integer("head_dim", f.integer("hidden_size") / heads));
  put(out, "attention.qk_norm", qk_norm);
  put(out, "attention.rope_theta", theta);
  put(out, "attention.rope_fraction", fraction);
}

void no_sliding_window(const HfFields& f) {
  if (f.flag("use_sliding_window", false)) f.refuse("use_sliding_window", "not supported");
  if (f.find("sliding_window") && !f.find("use_sliding_window")) {
    f.refuse("sliding_window", "sliding-window layers are not supported on import");
  }
}

// MoE layer indices as first_dense_layers + every: a pattern our config expresses.
void moe_layout(const HfFields& f, const std::set<int64_t>& moe_layers, int64_t n_layers,
                const std::string& field, Overrides& out) {
  if (moe_layers.empty()) return;
  const int64_t first = *moe_layers.begin();
  // One MoE layer: a step past the last layer, so no other layer is MoE.
  const int64_t every = moe_layers.size() > 1 ? *std::next(moe_layers.begin()) - first
                                              : std::max<int64_t>(1, n_layers - first);
  for (int64_t i = 0; i < n_layers; ++i) {
    const bool ours = i >= first && (i - first) % every == 0;
    if (ours != (moe_layers.count(i) > 0)) {
      f.refuse(field, "MoE layers must be every N-th layer after the first dense ones");
    }
  }
  put(out, "moe.first_dense_layers", first);
  put(out, "moe.every", every);
}

void softmax_moe(const HfFields& f, int64_t expert_hidden, bool renormalize,
                 const std::set<int64_t>& moe_layers, const std::string& layout_field,
                 Overrides& out) {
  put(out, "moe.n_experts", f.integer("num_local_experts", f.integer("num_experts", 0)));
  put(out, "moe.top_k", f.integer("num_experts_per_tok"));
  put(out, "moe.expert_hidden", expert_hidden);
  put(out, "moe.score", std::string("softmax"));
  put(out, "moe.renormalize", renormalize);
  put(out, "moe.shared_experts", int64_t{0});
  moe_layout(f, moe_layers, f.integer("num_hidden_layers"), layout_field, out);
}

void deepseek(const HfFields& f, Overrides& out) {
  common_model(f, out);
  if (f.flag("rope_interleave", true)) {
    f.refuse("rope_interleave", "only rotate-half RoPE (rope_interleave false) is imported");
  }
  if (f.real("rms_norm_eps", 1e-6) != 1e-6) {
    f.refuse("rms_norm_eps",
             "DeepseekV3 normalises the MLA latents with 1e-6, our layers with "
             "one eps for every norm");
  }
  double fraction = 1.0;
  put(out, "attention.kind", std::string("mla"));
  put(out, "attention.n_heads", f.integer("num_attention_heads"));
  put(out, "attention.rope_theta", rope_theta(f, fraction));
  put(out, "attention.mla.q_lora_rank",
      f.find("q_lora_rank") ? std::to_string(f.integer("q_lora_rank")) : std::string("null"));
  put(out, "attention.mla.kv_lora_rank", f.integer("kv_lora_rank"));
  put(out, "attention.mla.qk_nope_head_dim", f.integer("qk_nope_head_dim"));
  put(out, "attention.mla.qk_rope_head_dim", f.integer("qk_rope_head_dim"));
  put(out, "attention.mla.v_head_dim", f.integer("v_head_dim"));
  const int64_t layers = f.integer("num_hidden_layers");
  const int64_t first = f.integer("first_k_dense_replace", 3);
  if (first >= layers) return;  // all dense
  if (f.real("routed_scaling_factor", 2.5) != 1.0) {
    f.refuse("routed_scaling_factor", "our MoE does not scale the routed experts' sum");
  }
  if (f.integer("topk_group", 1) != f.integer("n_group", 1)) {
    f.refuse("topk_group",
             "group-limited routing is not supported (topk_group must equal n_group)");
  }
  if (f.text("scoring_func", "sigmoid") != "sigmoid") f.refuse("scoring_func", "sigmoid expected");
  put(out, "moe.n_experts", f.integer("n_routed_experts"));
  put(out, "moe.top_k", f.integer("num_experts_per_tok"));
  put(out, "moe.expert_hidden", f.integer("moe_intermediate_size"));
  put(out, "moe.shared_experts", f.integer("n_shared_experts", 1));
  put(out, "moe.score", std::string("sigmoid"));
  put(out, "moe.renormalize", f.flag("norm_topk_prob", true));
  put(out, "moe.first_dense_layers", first);
  put(out, "moe.every", int64_t{1});
}

// Our own remote-code folder: every key of the saved sections, as it was.
void remote_code(const HfFields& f, Overrides& out) {
  const Json& sections = f.at("cca_train_config");
  std::function<void(const Json&, const std::string&)> walk = [&](const Json& node,
                                                                  const std::string& path) {
    if (node.is_object()) {
      for (const auto& [key, child] : node.as_object(path)) {
        walk(child, path.empty() ? key : path + "." + key);
      }
      return;
    }
    put(out, path, node.dump());
  };
  for (const char* section : {"model", "attention", "moe"}) {
    const Json* node = sections.find(section);
    if (node == nullptr) throw Error(f.source() + ": cca_train_config has no '" + section + "'");
    walk(*node, section);
  }
}

}  // namespace

std::vector<std::string> overrides_from_hf(const Json& hf, const std::string& source) {
  const HfFields f(hf, source);
  const std::string type = f.text("model_type", "");
  Overrides out;
  const int64_t layers = type.empty() ? 0 : f.integer("num_hidden_layers", 0);
  if (type == "llama" || type == "mistral" || type == "qwen3" || type == "phi3") {
    common_model(f, out);
    if (type != "llama") no_sliding_window(f);
    head_attention(f, type == "qwen3", type == "phi3", out);
  } else if (type == "mixtral") {
    common_model(f, out);
    no_sliding_window(f);
    head_attention(f, false, false, out);
    std::set<int64_t> all;
    for (int64_t i = 0; i < layers; ++i) all.insert(i);
    softmax_moe(f, f.integer("intermediate_size"), true, all, "num_local_experts", out);
  } else if (type == "qwen3_moe") {
    common_model(f, out);
    no_sliding_window(f);
    head_attention(f, true, false, out);
    std::set<int64_t> dense;
    if (const Json* list = f.find("mlp_only_layers")) {
      for (const Json& i : list->as_array("mlp_only_layers"))
        dense.insert(i.as_int("mlp_only_layers"));
    }
    const int64_t step = f.integer("decoder_sparse_step", 1);
    std::set<int64_t> moe;
    for (int64_t i = 0; i < layers; ++i) {
      if (dense.count(i) == 0 && step > 0 && (i + 1) % step == 0) moe.insert(i);
    }
    softmax_moe(f, f.integer("moe_intermediate_size"), f.flag("norm_topk_prob", false), moe,
                "mlp_only_layers", out);
  } else if (type == "deepseek_v3") {
    deepseek(f, out);
  } else if (type == "cca_train") {
    remote_code(f, out);
  } else {
    throw Error(source + ": model_type = '" + type +
                "' is not importable (llama, mistral, qwen3, phi3, mixtral, qwen3_moe, "
                "deepseek_v3, cca_train)");
  }
  return out;
}

}  // namespace cca::interop
