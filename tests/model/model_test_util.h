// Tiny models of every attention variant (dense or MoE) for model-level tests.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "config/config.h"
#include "model/transformer.h"

namespace cca {

struct ModelCase {
  std::string kind;
  bool moe;
};

inline std::string case_name(const ::testing::TestParamInfo<ModelCase>& info) {
  return info.param.kind + (info.param.moe ? "_moe" : "_dense");
}

// A tiny model of each variant: E = 32, head_dim 8, 2 layers (the second one MoE when asked).
// "mha_convs" / "gqa_convs": that kind with CCA's convs (kernels 3 and 2) and value shift.
inline Config tiny_config(ModelCase mc) {
  Config c = default_config();
  const size_t convs = mc.kind.find("_convs");
  if (convs != std::string::npos) {
    mc.kind = mc.kind.substr(0, convs);
    c.attention.settings.set("attention.mha.convs", 2);
    c.attention.settings.set("attention.mha.conv_kernel_0", 3);
    c.attention.settings.set("attention.mha.value_shift", true);
  }
  c.model.d_model = 32;
  c.model.n_layers = 2;
  c.model.vocab_size = 64;
  c.model.ffn_hidden = 48;
  c.model.init_std = 0.1;
  c.attention.kind = mc.kind;
  c.attention.n_heads = 4;
  c.attention.rope_fraction = 0.5;
  if (mc.kind == "gqa" || mc.kind == "swa") c.attention.n_kv_heads = 2;
  if (mc.kind == "swa") c.attention.settings.set("attention.swa.window", 5);  // < train.seq_len
  if (mc.kind == "mla") {
    c.attention.settings.set("attention.mla.q_lora_rank", 16);
    c.attention.settings.set("attention.mla.kv_lora_rank", 12);
    c.attention.settings.set("attention.mla.qk_nope_head_dim", 8);
    c.attention.settings.set("attention.mla.qk_rope_head_dim", 4);
    c.attention.settings.set("attention.mla.v_head_dim", 8);
  }
  if (mc.kind == "cca") c.attention.settings.set("attention.cca.q_compression", 2);
  if (mc.kind == "ccgqa") {
    c.attention.settings.set("attention.cca.q_compression", 1);
    c.attention.settings.set("attention.cca.kv_compression", 2);
  }
  if (mc.moe) {
    c.moe.n_experts = 4;
    c.moe.top_k = 2;
    c.moe.expert_hidden = 24;
    c.moe.first_dense_layers = 1;
  }
  c.train.seq_len = 16;
  return c;
}

inline std::shared_ptr<TransformerImpl> make_model(const Config& c, at::ScalarType dtype) {
  at::manual_seed(1);
  auto model = std::make_shared<TransformerImpl>(c);
  model->to(dtype);
  return model;
}

}  // namespace cca
