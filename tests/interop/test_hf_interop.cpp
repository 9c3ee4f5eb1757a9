// Target selection, refusals, tensor maps, config.json round trips, sharded weights and the
// shape-mismatch report of the Hugging Face interop (lib/interop), without transformers (the
// Python tests in this folder load the exports with it).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "config/loader.h"
#include "interop/hf_config.h"
#include "interop/hf_convert.h"
#include "interop/hf_export.h"
#include "interop/hf_target.h"
#include "interop/hf_tensor_map.h"
#include "interop/hf_weights.h"
#include "testing/scratch_dir.h"
#include "util/error.h"
#include "util/files.h"

namespace cca::interop {
namespace {

// A 3-layer model; `yaml` may set keys of any section, model keys too (the size comes as --set).
Config config_of(const std::string& yaml) {
  LoadOptions options;
  options.overrides = {"model.d_model=64", "model.n_layers=3", "model.vocab_size=128",
                       "model.ffn_hidden=96"};
  return load_config_text(yaml, "test.yaml", options).config;
}

const char* kMla =
    "attention: {kind: mla, n_heads: 4, mla: {q_lora_rank: 32, kv_lora_rank: 24, "
    "qk_nope_head_dim: 16, qk_rope_head_dim: 8, v_head_dim: 12}}\n";

std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(HfTarget, EachConfigGetsTheStockClassThatComputesIt) {
  const std::pair<std::string, HfTarget> cases[] = {
      {"attention: {kind: mha, n_heads: 4}\n", HfTarget::llama},
      {"attention: {kind: gqa, n_heads: 4, n_kv_heads: 2}\n", HfTarget::llama},
      {"attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, qk_norm: true}\n", HfTarget::qwen3},
      {"attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, rope_fraction: 0.5}\n", HfTarget::phi3},
      {"attention: {kind: gqa, n_heads: 4, n_kv_heads: 2}\n"
       "moe: {n_experts: 4, first_dense_layers: 0}\n",
       HfTarget::mixtral},
      {"attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, qk_norm: true}\nmoe: {n_experts: 4}\n",
       HfTarget::qwen3_moe},
      {"model: {norm_eps: 1.0e-6}\n" + std::string(kMla), HfTarget::deepseek_v3},
      {"model: {norm_eps: 1.0e-6}\n" + std::string(kMla) +
           "moe: {n_experts: 4, score: sigmoid, shared_experts: 1, bias_update_rate: 0.01}\n",
       HfTarget::deepseek_v3},
  };
  for (const auto& [yaml, expected] : cases) {
    const TargetChoice choice = choose_target(config_of(yaml));
    EXPECT_EQ(target_name(choice.target), target_name(expected)) << yaml;
    EXPECT_TRUE(choice.problems.empty()) << yaml;
  }
}

TEST(HfTarget, SettingsWithoutAStockEquivalentFallBackNamingKeyAndValue) {
  const std::pair<std::string, std::string> cases[] = {
      {"attention: {kind: cca, n_heads: 4}\n", "attention.kind = cca"},
      {"attention: {kind: swa, n_heads: 4, n_kv_heads: 2}\n", "attention.kind = swa"},
      {"model: {norm_eps: 1.0e-5}\n" + std::string(kMla), "model.norm_eps = 1e-05"},
      {"attention: {kind: gqa, n_heads: 4, n_kv_heads: 2}\nmoe: {n_experts: 4, shared_experts: 1, "
       "first_dense_layers: 0}\n",
       "moe.shared_experts = 1"},
      {"attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, qk_norm: true}\n"
       "moe: {n_experts: 4, bias_update_rate: 0.01}\n",
       "moe.bias_update_rate = 0.01"},
      {"attention: {kind: gqa, n_heads: 4, n_kv_heads: 2}\n"
       "moe: {n_experts: 4, first_dense_layers: 0, renormalize: false}\n",
       "moe.renormalize = false"},
      {"model: {norm_eps: 1.0e-6}\n" + std::string(kMla) + "moe: {n_experts: 4}\n",
       "moe.score = softmax"},
      {"attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, qk_norm: true, rope_fraction: 0.5}\n",
       "attention.rope_fraction = 0.5"},
  };
  for (const auto& [yaml, named] : cases) {
    const TargetChoice choice = choose_target(config_of(yaml));
    EXPECT_EQ(choice.target, HfTarget::remote_code) << yaml;
    std::string all;
    for (const std::string& p : choice.problems) all += p + "\n";
    EXPECT_NE(all.find(named), std::string::npos) << yaml << " gave:\n" << all;
  }
}

TEST(HfTarget, AnExplicitTargetListsWhatItLacks) {
  const Config c = config_of("attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, qk_norm: true}\n");
  const std::vector<std::string> problems = target_problems(HfTarget::llama, c);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("attention.qk_norm = true"), std::string::npos);
  EXPECT_TRUE(target_problems(HfTarget::qwen3, c).empty());
  EXPECT_THROW(parse_target("gpt2"), Error);
}

TEST(HfTensorMap, Phi3FusesProjectionsAndExpertsAreSlices) {
  const Config phi =
      config_of("attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, rope_fraction: 0.5}\n");
  const TensorMap map = tensor_map(HfTarget::phi3, phi, {});
  const auto find = [&](const std::string& hf) -> const TensorLink& {
    for (const TensorLink& l : map.links) {
      if (l.hf == hf) return l;
    }
    throw Error("no link " + hf);
  };
  const TensorLink& qkv = find("model.layers.1.self_attn.qkv_proj.weight");
  ASSERT_EQ(qkv.pieces.size(), 3u);
  EXPECT_EQ(qkv.pieces[1].ours, "blocks.1.attention.k_proj.weight");
  EXPECT_EQ(find("model.layers.2.mlp.gate_up_proj.weight").pieces[1].ours, "blocks.2.ffn.w3");
  // Tied embeddings: no lm_head.
  for (const TensorLink& l : map.links) EXPECT_NE(l.hf, "lm_head.weight");

  const Config moe = config_of(
      "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2}\nmoe: {n_experts: 4, first_dense_layers: "
      "0}\n");
  const TensorMap mixtral = tensor_map(HfTarget::mixtral, moe, {});
  bool found = false;
  for (const TensorLink& l : mixtral.links) {
    if (l.hf == "model.layers.2.block_sparse_moe.experts.3.w2.weight") {
      found = true;
      EXPECT_EQ(l.pieces[0].ours, "blocks.2.moe.expert_w2");
      EXPECT_EQ(l.pieces[0].slice, 3);
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(mixtral.zero_filled.size(), 3u);  // Mixtral has no selection bias
}

TEST(HfConfig, StockConfigsImportBackToTheSameModel) {
  const std::string cases[] = {
      "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, rope_theta: 500000.0}\n",
      "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, rope_fraction: 0.5}\n",
      "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, qk_norm: true}\n"
      "moe: {n_experts: 4, every: 2, renormalize: false}\n",
      "model: {norm_eps: 1.0e-6}\n" + std::string(kMla) +
          "moe: {n_experts: 4, score: sigmoid, shared_experts: 2}\n",
      "attention: {kind: cca, n_heads: 4, rope_fraction: 0.5, cca: {q_compression: 2}}\n",
  };
  for (const std::string& yaml : cases) {
    const Config c = config_of(yaml);
    const HfTarget target = choose_target(c).target;
    const Json hf = parse_json(hf_config(target, c, {1, 2}, "float32").dump(), "config.json");
    LoadOptions options;
    options.overrides = overrides_from_hf(hf, "config.json");
    const Config back = load_config("", options).config;
    // The model sections agree, with "0 = automatic" widths and the sequence length written out.
    Config expected = c;
    expected.model.max_seq_len = back.model.max_seq_len;
    if (c.attention.head_dim == 0) expected.attention.head_dim = back.attention.head_dim;
    if (c.attention.n_kv_heads == 0) expected.attention.n_kv_heads = back.attention.n_kv_heads;
    if (c.moe.expert_hidden == 0) expected.moe.expert_hidden = back.moe.expert_hidden;
    EXPECT_EQ(resolved_model_sections(back).dump(), resolved_model_sections(expected).dump())
        << yaml;
  }
}

TEST(HfConfig, ImportRefusesWhatWeCannotComputeNamingFieldAndValue) {
  const std::pair<std::string, std::string> cases[] = {
      {R"({"model_type": "llama", "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})",
       "rope_scaling"},
      {R"({"model_type": "llama", "rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5}})",
       "rope_parameters"},
      {R"({"model_type": "mistral", "sliding_window": 4096})", "sliding_window = 4096"},
      {R"({"model_type": "llama", "attention_bias": true})", "attention_bias = true"},
      {R"({"model_type": "llama", "hidden_act": "gelu"})", "hidden_act = \"gelu\""},
      {R"({"model_type": "deepseek_v3"})", "rope_interleave = (absent)"},
      {R"({"model_type": "gpt2"})", "model_type = 'gpt2'"},
  };
  for (const auto& [json, named] : cases) {
    const std::string message = error_of([&] {
      Json hf = parse_json(json, "c.json");
      Json::Object o = hf.as_object("");
      for (const char* key : {"hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size",
                              "num_attention_heads"}) {
        o.emplace(key, Json(int64_t{64}));
      }
      overrides_from_hf(Json(o), "c.json");
    });
    EXPECT_NE(message.find(named), std::string::npos) << json << " gave: " << message;
  }
}

// attention.rope_scaling as transformers 5 spells it, and back.
TEST(HfConfig, RopeScalingExportsAsRopeParametersAndImportsBack) {
  const std::string heads = "attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, ";
  const std::string yarn =
      "rope_scaling: yarn, rope_scaling_factor: 4, rope_original_max_seq_len: 256}\n";
  for (const std::string& yaml : {heads + yarn, heads + "qk_norm: true, " + yarn,
                                  heads + "rope_scaling: linear, rope_scaling_factor: 2.5}\n"}) {
    const Config c = config_of(yaml + "train: {seq_len: 1024}\n");
    const HfTarget target = choose_target(c).target;
    EXPECT_NE(target_name(target), target_name(HfTarget::remote_code)) << yaml;
    const Json hf = parse_json(hf_config(target, c, {1, 2}, "float32").dump(), "config.json");
    const Json& rope = hf.at("rope_parameters", "config.json");
    EXPECT_EQ(rope.at("rope_type", "config.json").as_string(""), c.attention.rope_scaling) << yaml;
    EXPECT_EQ(rope.at("factor", "config.json").as_double(""), c.attention.rope_scaling_factor)
        << yaml;
    if (c.attention.rope_scaling == "yarn") {
      EXPECT_EQ(rope.at("original_max_position_embeddings", "config.json").as_int(""), 256);
      EXPECT_EQ(rope.at("beta_fast", "config.json").as_double(""), 32.0);
      EXPECT_EQ(rope.at("beta_slow", "config.json").as_double(""), 1.0);
    }
    LoadOptions options;
    options.overrides = overrides_from_hf(hf, "config.json");
    const Config back = load_config("", options).config;
    EXPECT_EQ(back.attention.rope_scaling, c.attention.rope_scaling) << yaml;
    EXPECT_EQ(back.attention.rope_scaling_factor, c.attention.rope_scaling_factor) << yaml;
    EXPECT_EQ(back.attention.rope_original_max_seq_len, c.attention.rope_original_max_seq_len);
  }
  // NTK-aware is the plain RoPE of base θ·s^{r/(r-2)} (r = head_dim 16 here).
  const Config ntk = config_of(heads + "rope_scaling: ntk, rope_scaling_factor: 4}\n");
  const Json hf = hf_config(HfTarget::llama, ntk, {1, 2}, "float32");
  EXPECT_EQ(hf.at("rope_parameters", "config.json").at("rope_type", "config.json").as_string(""),
            "default");
  EXPECT_DOUBLE_EQ(
      hf.at("rope_parameters", "config.json").at("rope_theta", "config.json").as_double(""),
      10000.0 * std::pow(4.0, 16.0 / 14.0));
  EXPECT_DOUBLE_EQ(hf.at("rope_theta", "config.json").as_double(""),
                   10000.0 * std::pow(4.0, 16.0 / 14.0));
}

TEST(HfConfig, ScaledRopeWithoutAnExactHfFormIsRefusedNamingTheKey) {
  const std::string yarn =
      "rope_scaling: yarn, rope_scaling_factor: 4, rope_original_max_seq_len: 256";
  // Phi3 (partial RoPE) and DeepSeek-V3 (MLA) list the scaling among what they lack.
  const std::pair<std::string, HfTarget> cases[] = {
      {"attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, rope_fraction: 0.5, " + yarn + "}\n",
       HfTarget::phi3},
      {"model: {norm_eps: 1.0e-6}\n" + std::string(kMla).insert(12, yarn + ", "),
       HfTarget::deepseek_v3}};
  for (const auto& [yaml, stock] : cases) {
    const Config c = config_of(yaml);
    EXPECT_EQ(target_name(choose_target(c).target), target_name(HfTarget::remote_code)) << yaml;
    bool named = false;
    for (const std::string& p : target_problems(stock, c))
      named = named || p.find("attention.rope_scaling = yarn") != std::string::npos;
    EXPECT_TRUE(named) << yaml;
  }
  // The remote-code export computes plain RoPE: refused before anything is written.
  testing::ScratchDir dir;
  const std::string checkpoint = (dir / "ckpt");
  files::make_directories(checkpoint);
  std::ofstream(files::join(checkpoint, "config.yaml"))
      << "attention: {kind: cca, n_heads: 4, rope_fraction: 0.5, cca: {q_compression: 2}, " << yarn
      << "}\n";
  HfExportRequest request;
  request.checkpoint = checkpoint;
  request.out = dir / "out";
  const std::string message = error_of([&] { export_hf(request); });
  EXPECT_NE(message.find("attention.rope_scaling = yarn"), std::string::npos) << message;
  EXPECT_NE(message.find("remote-code"), std::string::npos) << message;
  EXPECT_FALSE(files::exists(dir / "out"));
}

// MHA/GQA with CCA's convs or value shift (attention.mha.*) has no transformers class, stock or
// remote-code: refused before anything is written, naming the key, whatever --hf-target says.
TEST(HfConfig, HeadConvsAreRefusedNamingTheKey) {
  const std::pair<std::string, std::string> cases[] = {
      {"attention: {kind: mha, n_heads: 4, mha: {convs: 2}}\n", "attention.mha.convs = 2"},
      {"attention: {kind: gqa, n_heads: 4, n_kv_heads: 2, mha: {value_shift: true}}\n",
       "attention.mha.value_shift = true"}};
  for (const auto& [yaml, key] : cases) {
    for (const std::string target : {"auto", "llama", "remote-code"}) {
      testing::ScratchDir dir;
      const std::string checkpoint = (dir / "ckpt");
      files::make_directories(checkpoint);
      std::ofstream(files::join(checkpoint, "config.yaml")) << yaml;
      HfExportRequest request;
      request.checkpoint = checkpoint;
      request.out = dir / "out";
      request.target = target;
      const std::string message = error_of([&] { export_hf(request); });
      EXPECT_NE(message.find(key), std::string::npos) << target << ": " << message;
      EXPECT_FALSE(files::exists(dir / "out")) << target;
    }
  }
}

TEST(HfWeights, ShardsPastTheLimitWithAnIndexAndReadsBack) {
  testing::ScratchDir dir;
  std::vector<std::pair<std::string, HostTensor>> tensors;
  for (int i = 0; i < 5; ++i) {
    std::vector<float> values(100, static_cast<float>(i));
    HostTensor t{"F32", {10, 10}, std::string(400, '\0')};
    std::memcpy(&t.bytes[0], values.data(), 400);
    tensors.emplace_back("t" + std::to_string(i), t);
  }
  const auto written = write_weights(dir.path().string(), tensors, 900);  // two tensors per shard
  ASSERT_EQ(written.size(), 4u);
  EXPECT_EQ(written[0], "model-00001-of-00003.safetensors");
  EXPECT_EQ(written[3], "model.safetensors.index.json");
  const HfWeights back(dir.path().string());
  EXPECT_EQ(back.names().size(), 5u);
  float value = 0;
  std::memcpy(&value, back.data("t4"), 4);
  EXPECT_EQ(value, 4.0f);
  files::make_directories(dir.path().string() + "/one");
  EXPECT_EQ(write_weights(dir.path().string() + "/one", {}, 900).size(), 1u);
}

TEST(HfWeights, Bf16RoundsToNearestEvenAndConvertsBack) {
  const float values[] = {1.0f, 1.00390625f, 1.01171875f, -2.5f};  // ties go to the even bf16
  std::string bytes(reinterpret_cast<const char*>(values), sizeof(values));
  const std::string half = convert_floats(bytes, "F32", "BF16", "t");
  const std::string back = convert_floats(half, "BF16", "F32", "t");
  float out[4];
  std::memcpy(out, back.data(), sizeof(out));
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], 1.0f);
  EXPECT_EQ(out[2], 1.015625f);
  EXPECT_EQ(out[3], -2.5f);
  EXPECT_THROW(convert_floats(bytes, "F32", "I64", "t"), Error);
}

TEST(HfConvert, ShapeMismatchesAreListedTogether) {
  const Shapes expected = {{"a", {4, 4}}, {"b", {4}}, {"c", {2}}};
  const Shapes found = {{"a", {4, 8}}, {"b", {5}}, {"d", {1}}};
  const std::string message = error_of([&] { check_shapes(expected, found, "src"); });
  EXPECT_NE(message.find("a (expected [4, 4], found [4, 8])"), std::string::npos) << message;
  EXPECT_NE(message.find("b (expected [4], found [5])"), std::string::npos);
  EXPECT_NE(message.find("missing: c"), std::string::npos);
  EXPECT_NE(message.find("unexpected: d"), std::string::npos);
  EXPECT_EQ(error_of([&] { check_shapes(expected, expected, "src"); }), "(no error)");
}

}  // namespace
}  // namespace cca::interop
