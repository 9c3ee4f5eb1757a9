// The attention-variant descriptors (lib/config/variants/): the registry, the keys each variant
// declares, the typed settings store, and what they print, pinned to the texts cca-train printed
// before the descriptors existed.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "config/accounting.h"
#include "config/attention_variant.h"
#include "config/derived.h"
#include "config/loader.h"
#include "config/schema.h"
#include "util/error.h"

namespace cca {
namespace {

LoadedConfig shipped(const std::string& relative) {
  return load_config((std::filesystem::path(CCA_SOURCE_DIR) / "configs" / relative).string());
}

std::string dry_run_attention_line(const Config& c) {
  return describe_derived(derive_values(c, 1)).front();
}

TEST(AttentionVariants, TheRegistryListsEachVariantOnceThePapersFiveFirst) {
  const std::vector<std::string> names = attention_variant_names();
  ASSERT_GE(names.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(names.begin(), names.begin() + 5),
            (std::vector<std::string>{"mha", "gqa", "mla", "cca", "ccgqa"}));
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
  for (const std::string& name : names) EXPECT_EQ(attention_variant(name).name(), name);
  const auto* kinds = std::get_if<EnumSpec>(&find_key("attention.kind")->type);
  ASSERT_NE(kinds, nullptr);
  EXPECT_EQ(kinds->choices, names);
}

TEST(AttentionVariants, AnUnknownKindNamesTheKnownOnes) {
  try {
    attention_variant("transformer");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("unknown attention kind 'transformer'"), std::string::npos) << message;
    EXPECT_NE(message.find("mha | gqa | mla | cca | ccgqa"), std::string::npos) << message;
  }
}

TEST(AttentionVariants, EveryDeclaredKeyIsInTheSchemaAtItsDefault) {
  Config defaults = default_config();
  size_t declared = 0;
  for (const AttentionVariant* variant : attention_variants()) {
    for (const KeySpec& key : variant->keys()) {
      ++declared;
      EXPECT_EQ(key.path.rfind("attention.", 0), 0u) << key.path;
      const KeySpec* schema_key = find_key(key.path);
      ASSERT_NE(schema_key, nullptr) << key.path;
      EXPECT_EQ(schema_key->help, key.help);
      EXPECT_TRUE(defaults.attention.settings.contains(key.path)) << key.path;
      EXPECT_EQ(value_text(*schema_key, defaults), key.default_text()) << key.path;
    }
  }
  EXPECT_GE(declared, 14u);  // 5 MLA keys + 9 CCA keys at least
}

TEST(AttentionVariants, EveryVariantResolvesAShapeAndDescribesIt) {
  for (const std::string& name : attention_variant_names()) {
    Config c = default_config();
    c.attention.kind = name;
    c.attention.n_kv_heads = name == "mha" ? 0 : 4;  // what grouped variants need
    c.attention.rope_fraction = 0.5;
    const AttentionGeometry g = attention_geometry(c);
    EXPECT_EQ(g.kind, name);
    EXPECT_GT(g.n_q_heads, 0) << name;
    EXPECT_GT(g.n_kv_heads, 0) << name;
    EXPECT_GT(g.head_dim, 0) << name;
    EXPECT_GT(attention_params(g).linear, 0) << name;
    EXPECT_GT(kv_cache_elements_per_token(g), 0) << name;
    // More context never costs fewer FLOPs, and a causal pass never more than a full one.
    EXPECT_LE(attention_forward_flops_per_token(g, 1000, true),
              attention_forward_flops_per_token(g, 1000, false))
        << name;
    EXPECT_LE(attention_decode_flops(g, 10), attention_decode_flops(g, 1000)) << name;
    EXPECT_EQ(attention_summary(g).rfind(name + ":", 0), 0u) << attention_summary(g);
    EXPECT_EQ(attention_label(g).rfind(name + " ", 0), 0u) << attention_label(g);
  }
}

// The --dry-run line and the report label of each shipped GPT-2-small variant, as the code before
// the descriptors printed them.
TEST(AttentionVariants, DryRunLinesAndReportLabelsAreUnchanged) {
  const std::vector<std::vector<std::string>> expected = {
      {"gpt2-small/mha.yaml",
       "attention   mha: 12 query heads, 12 kv heads (group 1), head_dim 64, rope dims 64",
       "mha 12q/12kv ×64"},
      {"gpt2-small/gqa.yaml",
       "attention   gqa: 12 query heads, 4 kv heads (group 3), head_dim 64, rope dims 64",
       "gqa 12q/4kv ×64"},
      {"gpt2-small/mla.yaml",
       "attention   mla: 12 heads, q_lora_rank 384, kv_lora_rank 320, qk dims 64+32 (nope+rope), "
       "v dim 64",
       "mla 12h, kv latent 320 + rope 32, q latent 384"},
      {"gpt2-small/cca.yaml",
       "attention   cca: 3 query heads, 3 kv heads (group 1), head_dim 64, rope dims 32; latent "
       "widths q 192 / kv 192 (compression 4x / 4x), convs 2 (k 2 2), q-k mean on, value shift on",
       "cca 3q/3kv ×64, convs 2, q-k mean on, value shift on"},
      {"gpt2-small/ccgqa.yaml",
       "attention   ccgqa: 6 query heads, 3 kv heads (group 2), head_dim 64, rope dims 32; latent "
       "widths q 384 / kv 192 (compression 2x / 4x), convs 2 (k 2 2), q-k mean on, value shift on",
       "ccgqa 6q/3kv ×64, convs 2, q-k mean on, value shift on"},
  };
  for (const auto& row : expected) {
    const Config c = shipped(row[0]).config;
    EXPECT_EQ(dry_run_attention_line(c), row[1]);
    EXPECT_EQ(attention_label(attention_geometry(c)), row[2]);
  }
}

TEST(VariantSettings, ReadsAndWritesTyped) {
  VariantSettings s;
  s.set("attention.x.width", 3);
  s.set("attention.x.on", true);
  s.set("attention.x.form", "exp");
  s.slot<std::optional<int64_t>>("attention.x.rank");
  EXPECT_EQ(s.integer("attention.x.width"), 3);
  EXPECT_TRUE(s.flag("attention.x.on"));
  EXPECT_EQ(s.text("attention.x.form"), "exp");
  EXPECT_FALSE(s.optional_integer("attention.x.rank").has_value());
  s.set("attention.x.rank", 64);  // an integer written to an "int or null" key
  EXPECT_EQ(s.optional_integer("attention.x.rank"), std::optional<int64_t>(64));
  s.set("attention.x.rank", std::nullopt);
  EXPECT_FALSE(s.optional_integer("attention.x.rank").has_value());
}

TEST(VariantSettings, AMissingKeyOrAWrongTypeIsAnErrorNamingTheKey) {
  VariantSettings s;
  s.set("attention.x.width", 3);
  EXPECT_THROW(
      {
        try {
          s.flag("attention.x.width");
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("attention.x.width"), std::string::npos);
          throw;
        }
      },
      Error);
  EXPECT_THROW(s.set("attention.x.width", "text"), Error);
  EXPECT_THROW(
      {
        try {
          s.integer("attention.x.depth");
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("attention.x.depth"), std::string::npos);
          throw;
        }
      },
      Error);
}

}  // namespace
}  // namespace cca
