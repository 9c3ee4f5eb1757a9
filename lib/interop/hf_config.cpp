#include "interop/hf_config.h"

#include <cmath>
#include <functional>
#include <variant>

#include "config/geometry.h"
#include "config/schema.h"
#include "config/variants/mla.h"
#include "util/error.h"
#include "util/format.h"

namespace cca::interop {
namespace {

Json optional_id(const std::optional<int64_t>& id) {
  return id ? Json(*id) : Json();
}

// RoPE as transformers 5's rope_parameters spell it: linear and yarn by name (yarn's β 32/1 and
// temperature 0.1·ln s + 1 are its defaults too), NTK-aware as the plain RoPE of its enlarged base.
Json::Object rope_parameters(const Config& c) {
  const AttentionConfig& a = c.attention;
  Json::Object rope;
  rope["rope_type"] =
      a.rope_scaling == "linear" || a.rope_scaling == "yarn" ? a.rope_scaling : "default";
  rope["rope_theta"] = a.rope_theta;
  if (a.rope_scaling == "ntk") {
    const double r = static_cast<double>(attention_geometry(c).rope_dim);
    rope["rope_theta"] = a.rope_theta * std::pow(a.rope_scaling_factor, r / (r - 2.0));
  }
  if (a.rope_scaling == "linear" || a.rope_scaling == "yarn")
    rope["factor"] = a.rope_scaling_factor;
  if (a.rope_scaling == "yarn") {
    rope["original_max_position_embeddings"] = a.rope_original_max_seq_len;
    rope["beta_fast"] = 32.0;
    rope["beta_slow"] = 1.0;
  }
  return rope;
}

// Fields every target shares: sizes, norm, RoPE, embeddings, special tokens.
Json::Object common_fields(HfTarget target, const Config& c, const SpecialTokens& tokens,
                           const std::string& dtype) {
  const AttentionGeometry g = attention_geometry(c);
  Json::Object o;
  o["architectures"] = Json(Json::Array{architecture(target)});
  o["model_type"] = model_type(target);
  o["vocab_size"] = c.model.vocab_size;
  o["hidden_size"] = c.model.d_model;
  o["num_hidden_layers"] = c.model.n_layers;
  o["num_attention_heads"] = g.n_q_heads;
  o["num_key_value_heads"] = g.n_kv_heads;
  o["head_dim"] = g.head_dim;
  o["intermediate_size"] = dense_ffn_hidden(c);
  o["max_position_embeddings"] = max_sequence_length(c);
  o["rms_norm_eps"] = c.model.norm_eps;
  o["hidden_act"] = "silu";
  o["tie_word_embeddings"] = c.model.tie_embeddings;
  o["attention_bias"] = false;
  o["attention_dropout"] = 0.0;
  o["initializer_range"] = c.model.init_std;
  // transformers 5 reads rope_parameters; 4.x reads rope_theta.
  Json::Object rope = rope_parameters(c);
  o["rope_theta"] = rope["rope_theta"];
  o["rope_parameters"] = Json(std::move(rope));
  o["bos_token_id"] = optional_id(tokens.bos);
  o["eos_token_id"] = optional_id(tokens.eos);
  o["pad_token_id"] = Json();
  o["dtype"] = dtype;
  o["torch_dtype"] = dtype;
  o["use_cache"] = true;
  return o;
}

void no_sliding_window(Json::Object& o, const Config& c) {
  o["sliding_window"] = Json();
  o["use_sliding_window"] = false;
  o["max_window_layers"] = c.model.n_layers;
  Json::Array types;
  for (int64_t i = 0; i < c.model.n_layers; ++i) types.emplace_back("full_attention");
  o["layer_types"] = Json(std::move(types));
}

void softmax_moe_fields(Json::Object& o, const Config& c) {
  o["num_local_experts"] = c.moe.n_experts;
  o["num_experts"] = c.moe.n_experts;
  o["num_experts_per_tok"] = c.moe.top_k;
  o["router_aux_loss_coef"] = c.moe.aux_loss_coef;
  o["output_router_logits"] = false;
}

void deepseek_fields(Json::Object& o, const Config& c) {
  const variants::MlaGeometry m = variants::mla_geometry(attention_geometry(c));
  o["q_lora_rank"] = m.q_lora_rank > 0 ? Json(m.q_lora_rank) : Json();
  o["kv_lora_rank"] = m.kv_lora_rank;
  o["qk_nope_head_dim"] = m.qk_nope_dim;
  o["qk_rope_head_dim"] = m.rope_dim;
  o["v_head_dim"] = m.v_head_dim;
  o.erase("head_dim");  // DeepseekV3Config derives it (= qk_rope_head_dim)
  o["num_key_value_heads"] = m.n_q_heads;
  o["rope_interleave"] = false;  // we rotate (i, i + r/2) pairs
  const bool moe = moe_layer_count(c) > 0;
  o["first_k_dense_replace"] = moe ? c.moe.first_dense_layers : c.model.n_layers;
  o["n_routed_experts"] = moe ? c.moe.n_experts : 2;
  o["num_experts_per_tok"] = moe ? c.moe.top_k : 1;
  o["moe_intermediate_size"] = expert_ffn_hidden(c);
  o["n_shared_experts"] = moe ? c.moe.shared_experts : 1;
  o["norm_topk_prob"] = c.moe.renormalize;
  o["routed_scaling_factor"] = 1.0;
  o["n_group"] = 1;
  o["topk_group"] = 1;
  o["scoring_func"] = "sigmoid";
  o["topk_method"] = "noaux_tc";
  o["num_nextn_predict_layers"] = 0;
}

void remote_fields(Json::Object& o, const Config& c) {
  Json::Object auto_map;
  auto_map["AutoConfig"] = "configuration_cca_train.CcaTrainConfig";
  auto_map["AutoModelForCausalLM"] = "modeling_cca_train.CcaTrainForCausalLM";
  o["auto_map"] = Json(std::move(auto_map));
  o["num_attention_heads"] = c.attention.n_heads;  // the reference heads, not CCA's latent ones
  o["num_key_value_heads"] =
      c.attention.n_kv_heads > 0 ? c.attention.n_kv_heads : c.attention.n_heads;
  o.erase("head_dim");
  o["cca_train_config"] = resolved_model_sections(c);
}

Json field_value(const KeySpec& key, Config& c) {
  return std::visit(
      [&](auto value) -> Json {
        using V = decltype(value);
        if constexpr (std::is_same_v<V, SourceListRef> ||
                      std::is_same_v<V, std::vector<DataStage>*>) {
          return Json(value_text(key, c));  // data keys' lists: in no model section
        } else if constexpr (std::is_same_v<V, std::optional<int64_t>*>) {
          return *value ? Json(**value) : Json();
        } else {
          return Json(*value);
        }
      },
      key.field(c));
}

}  // namespace

Json resolved_model_sections(const Config& config) {
  Config copy = config;
  Json::Object sections;
  for (const KeySpec& key : config_keys()) {
    const std::string top = key.path.substr(0, key.path.find('.'));
    if (top != "model" && top != "attention" && top != "moe") continue;
    // Nested objects along the dotted path: attention.cca.q_compression -> {cca: {...}}.
    std::vector<std::string> parts;
    for (size_t start = 0, dot; start <= key.path.size(); start = dot + 1) {
      dot = key.path.find('.', start);
      if (dot == std::string::npos) dot = key.path.size();
      parts.push_back(key.path.substr(start, dot - start));
    }
    // Json holds objects by value: rebuild the path bottom-up.
    std::function<void(Json::Object&, size_t)> put = [&](Json::Object& obj, size_t i) {
      if (i + 1 == parts.size()) {
        obj[parts[i]] = field_value(key, copy);
        return;
      }
      Json::Object child;
      if (const auto it = obj.find(parts[i]); it != obj.end())
        child = it->second.as_object(parts[i]);
      put(child, i + 1);
      obj[parts[i]] = Json(std::move(child));
    };
    put(sections, 0);
  }
  return Json(std::move(sections));
}

Json hf_config(HfTarget target, const Config& c, const SpecialTokens& tokens,
               const std::string& dtype) {
  Json::Object o = common_fields(target, c, tokens, dtype);
  switch (target) {
    case HfTarget::llama:
      o["mlp_bias"] = false;
      o["pretraining_tp"] = 1;
      break;
    case HfTarget::qwen3:
      no_sliding_window(o, c);
      break;
    case HfTarget::phi3: {
      const AttentionGeometry g = attention_geometry(c);
      const double factor = static_cast<double>(g.rope_dim) / static_cast<double>(g.head_dim);
      o["partial_rotary_factor"] = factor;
      Json::Object rope = o["rope_parameters"].as_object("rope_parameters");
      rope["partial_rotary_factor"] = factor;
      o["rope_parameters"] = Json(std::move(rope));
      o["original_max_position_embeddings"] = max_sequence_length(c);
      o["resid_pdrop"] = 0.0;
      o["embd_pdrop"] = 0.0;
      o["sliding_window"] = Json();
      break;
    }
    case HfTarget::mixtral:
      softmax_moe_fields(o, c);
      o["intermediate_size"] = expert_ffn_hidden(c);
      o["router_jitter_noise"] = 0.0;
      o["sliding_window"] = Json();
      break;
    case HfTarget::qwen3_moe: {
      softmax_moe_fields(o, c);
      no_sliding_window(o, c);
      o["moe_intermediate_size"] = expert_ffn_hidden(c);
      o["norm_topk_prob"] = c.moe.renormalize;
      o["decoder_sparse_step"] = 1;
      Json::Array dense;
      for (int64_t i = 0; i < c.model.n_layers; ++i) {
        if (!is_moe_layer(c, i)) dense.emplace_back(i);
      }
      o["mlp_only_layers"] = Json(std::move(dense));
      break;
    }
    case HfTarget::deepseek_v3:
      deepseek_fields(o, c);
      break;
    case HfTarget::remote_code:
      remote_fields(o, c);
      break;
  }
  return Json(std::move(o));
}

Json generation_config(const SpecialTokens& tokens) {
  Json::Object o;
  o["bos_token_id"] = optional_id(tokens.bos);
  Json::Array stops;
  if (tokens.eos) stops.emplace_back(*tokens.eos);
  if (tokens.bos) stops.emplace_back(*tokens.bos);
  o["eos_token_id"] = stops.size() == 1 ? stops.front() : Json(std::move(stops));
  o["pad_token_id"] = Json();
  o["do_sample"] = false;
  return Json(std::move(o));
}

}  // namespace cca::interop
