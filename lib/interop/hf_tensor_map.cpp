#include "interop/hf_tensor_map.h"

#include <map>

#include "config/geometry.h"
#include "config/variants/mla.h"
#include "util/error.h"

namespace cca::interop {
namespace {

// One row of a table: the HF name and our pieces, with {L} for the layer and {X} for the expert.
// A piece ending in "[X]" is expert X's slice of our stacked tensor.
struct Row {
  const char* hf;
  std::vector<const char*> ours;
};
using Table = std::vector<Row>;

const Table kGlobal = {
    {"model.embed_tokens.weight", {"embedding"}},
    {"model.norm.weight", {"final_norm.weight"}},
};
const Table kUntiedHead = {{"lm_head.weight", {"lm_head"}}};
const Table kNorms = {
    {"model.layers.{L}.input_layernorm.weight", {"blocks.{L}.attention_norm.weight"}},
    {"model.layers.{L}.post_attention_layernorm.weight", {"blocks.{L}.ffn_norm.weight"}},
};
const Table kHeads = {
    {"model.layers.{L}.self_attn.q_proj.weight", {"blocks.{L}.attention.q_proj.weight"}},
    {"model.layers.{L}.self_attn.k_proj.weight", {"blocks.{L}.attention.k_proj.weight"}},
    {"model.layers.{L}.self_attn.v_proj.weight", {"blocks.{L}.attention.v_proj.weight"}},
    {"model.layers.{L}.self_attn.o_proj.weight", {"blocks.{L}.attention.o_proj.weight"}},
};
const Table kQkNorm = {
    {"model.layers.{L}.self_attn.q_norm.weight", {"blocks.{L}.attention.q_norm.weight"}},
    {"model.layers.{L}.self_attn.k_norm.weight", {"blocks.{L}.attention.k_norm.weight"}},
};
const Table kPhi3Heads = {
    {"model.layers.{L}.self_attn.qkv_proj.weight",
     {"blocks.{L}.attention.q_proj.weight", "blocks.{L}.attention.k_proj.weight",
      "blocks.{L}.attention.v_proj.weight"}},
    {"model.layers.{L}.self_attn.o_proj.weight", {"blocks.{L}.attention.o_proj.weight"}},
};
const Table kMlaQueryFull = {
    {"model.layers.{L}.self_attn.q_proj.weight", {"blocks.{L}.attention.q_proj.weight"}},
};
const Table kMlaQueryLatent = {
    {"model.layers.{L}.self_attn.q_a_proj.weight", {"blocks.{L}.attention.q_a_proj.weight"}},
    {"model.layers.{L}.self_attn.q_a_layernorm.weight", {"blocks.{L}.attention.q_a_norm.weight"}},
    {"model.layers.{L}.self_attn.q_b_proj.weight", {"blocks.{L}.attention.q_b_proj.weight"}},
};
const Table kMlaKeyValue = {
    {"model.layers.{L}.self_attn.kv_a_proj_with_mqa.weight",
     {"blocks.{L}.attention.kv_a_proj.weight"}},
    {"model.layers.{L}.self_attn.kv_a_layernorm.weight", {"blocks.{L}.attention.kv_a_norm.weight"}},
    {"model.layers.{L}.self_attn.kv_b_proj.weight", {"blocks.{L}.attention.kv_b_proj.weight"}},
    {"model.layers.{L}.self_attn.o_proj.weight", {"blocks.{L}.attention.o_proj.weight"}},
};
const Table kDenseFfn = {
    {"model.layers.{L}.mlp.gate_proj.weight", {"blocks.{L}.ffn.w1"}},
    {"model.layers.{L}.mlp.up_proj.weight", {"blocks.{L}.ffn.w3"}},
    {"model.layers.{L}.mlp.down_proj.weight", {"blocks.{L}.ffn.w2"}},
};
const Table kPhi3Ffn = {
    {"model.layers.{L}.mlp.gate_up_proj.weight", {"blocks.{L}.ffn.w1", "blocks.{L}.ffn.w3"}},
    {"model.layers.{L}.mlp.down_proj.weight", {"blocks.{L}.ffn.w2"}},
};
const Table kMixtralRouter = {
    {"model.layers.{L}.block_sparse_moe.gate.weight", {"blocks.{L}.moe.router_weight"}},
};
const Table kMixtralExpert = {
    {"model.layers.{L}.block_sparse_moe.experts.{X}.w1.weight", {"blocks.{L}.moe.expert_w1[X]"}},
    {"model.layers.{L}.block_sparse_moe.experts.{X}.w3.weight", {"blocks.{L}.moe.expert_w3[X]"}},
    {"model.layers.{L}.block_sparse_moe.experts.{X}.w2.weight", {"blocks.{L}.moe.expert_w2[X]"}},
};
const Table kMlpRouter = {
    {"model.layers.{L}.mlp.gate.weight", {"blocks.{L}.moe.router_weight"}},
};
const Table kMlpExpert = {
    {"model.layers.{L}.mlp.experts.{X}.gate_proj.weight", {"blocks.{L}.moe.expert_w1[X]"}},
    {"model.layers.{L}.mlp.experts.{X}.up_proj.weight", {"blocks.{L}.moe.expert_w3[X]"}},
    {"model.layers.{L}.mlp.experts.{X}.down_proj.weight", {"blocks.{L}.moe.expert_w2[X]"}},
};
const Table kDeepseekRouterBias = {
    {"model.layers.{L}.mlp.gate.e_score_correction_bias", {"blocks.{L}.moe.selection_bias"}},
};
const Table kDeepseekShared = {
    {"model.layers.{L}.mlp.shared_experts.gate_proj.weight", {"blocks.{L}.moe.shared_w1"}},
    {"model.layers.{L}.mlp.shared_experts.up_proj.weight", {"blocks.{L}.moe.shared_w3"}},
    {"model.layers.{L}.mlp.shared_experts.down_proj.weight", {"blocks.{L}.moe.shared_w2"}},
};

std::string substitute(std::string text, const std::string& key, int64_t value) {
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key)) {
    text.replace(at, key.size(), std::to_string(value));
  }
  return text;
}

TensorPiece piece(const std::string& pattern, int64_t layer, int64_t expert) {
  std::string name = substitute(pattern, "{L}", layer);
  if (name.size() > 3 && name.compare(name.size() - 3, 3, "[X]") == 0) {
    return {name.substr(0, name.size() - 3), expert};
  }
  return {name, -1};
}

void add(TensorMap& map, const Table& table, int64_t layer, int64_t expert = -1) {
  for (const Row& row : table) {
    TensorLink link;
    link.hf = substitute(substitute(row.hf, "{L}", layer), "{X}", expert);
    for (const char* ours : row.ours) link.pieces.push_back(piece(ours, layer, expert));
    map.links.push_back(std::move(link));
  }
}

void add_attention(TensorMap& map, HfTarget target, const Config& c, int64_t layer) {
  if (target == HfTarget::deepseek_v3) {
    const bool latent_query = variants::mla_geometry(attention_geometry(c)).q_lora_rank > 0;
    add(map, latent_query ? kMlaQueryLatent : kMlaQueryFull, layer);
    add(map, kMlaKeyValue, layer);
  } else if (target == HfTarget::phi3) {
    add(map, kPhi3Heads, layer);
  } else {
    add(map, kHeads, layer);
    if (c.attention.qk_norm) add(map, kQkNorm, layer);
  }
}

void add_moe(TensorMap& map, HfTarget target, const Config& c, int64_t layer) {
  const bool mixtral = target == HfTarget::mixtral;
  add(map, mixtral ? kMixtralRouter : kMlpRouter, layer);
  for (int64_t e = 0; e < c.moe.n_experts; ++e)
    add(map, mixtral ? kMixtralExpert : kMlpExpert, layer, e);
  if (target == HfTarget::deepseek_v3) {
    add(map, kDeepseekRouterBias, layer);
    add(map, kDeepseekShared, layer);
  } else {
    map.zero_filled.push_back("blocks." + std::to_string(layer) + ".moe.selection_bias");
  }
}

}  // namespace

TensorMap tensor_map(HfTarget target, const Config& c, const std::vector<std::string>& our_names) {
  TensorMap map;
  if (target == HfTarget::remote_code) {
    for (const std::string& name : our_names) map.links.push_back({name, {{name, -1}}});
    return map;
  }
  add(map, kGlobal, 0);
  if (!c.model.tie_embeddings) add(map, kUntiedHead, 0);
  for (int64_t layer = 0; layer < c.model.n_layers; ++layer) {
    add(map, kNorms, layer);
    add_attention(map, target, c, layer);
    if (is_moe_layer(c, layer)) {
      add_moe(map, target, c, layer);
    } else {
      add(map, target == HfTarget::phi3 ? kPhi3Ffn : kDenseFfn, layer);
    }
  }
  return map;
}

}  // namespace cca::interop
