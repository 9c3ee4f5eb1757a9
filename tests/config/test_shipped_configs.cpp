// Every config the repository ships must load, and the documented numbers in their comments must
// match what cca-train computes.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/accounting.h"
#include "config/geometry.h"
#include "config/loader.h"
#include "util/error.h"

namespace cca {
namespace {

namespace fs = std::filesystem;

const fs::path& configs_dir() {
  static const fs::path dir = fs::path(CCA_SOURCE_DIR) / "configs";
  return dir;
}

// Sweep files (configs/ablations/*.yaml: top-level runs: or grid:) are not run configs; the
// sweep tests check them (tests/sweep/test_shipped_sweeps.cpp).
bool is_sweep_file(const fs::path& path) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("runs:", 0) == 0 || line.rfind("grid:", 0) == 0) return true;
  }
  return false;
}

std::vector<std::string> shipped_configs() {
  std::vector<std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(configs_dir())) {
    if (entry.is_regular_file() && entry.path().extension() == ".yaml" &&
        !is_sweep_file(entry.path())) {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

LoadedConfig load_shipped(const std::string& relative) {
  return load_config((configs_dir() / relative).string());
}

TEST(ShippedConfigs, AllLoad) {
  const std::vector<std::string> files = shipped_configs();
  // quickstart, zaya1 and gpt2-small/{base,mha,gqa,mla,cca,ccgqa} at least.
  ASSERT_GE(files.size(), 8u);
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    try {
      const LoadedConfig loaded = load_config(file);
      ASSERT_FALSE(loaded.files.empty());
      EXPECT_EQ(loaded.files.front(), file);
      EXPECT_FALSE(loaded.origins.empty()) << "a shipped config that sets nothing";
      for (const Diagnostic& w : loaded.warnings) {
        ADD_FAILURE() << "warning " << w.origin.describe() << ": " << w.message;
      }
    } catch (const ConfigError& e) {
      ADD_FAILURE() << e.what();
    }
  }
}

TEST(ShippedConfigs, Zaya1LayerMatchesTheSpec) {
  const LoadedConfig loaded = load_shipped("zaya1-ccgqa-layer.yaml");
  const AttentionGeometry g = attention_geometry(loaded.config);
  EXPECT_EQ(g.kind, "ccgqa");
  EXPECT_EQ(g.n_q_heads, 8);
  EXPECT_EQ(g.n_kv_heads, 2);
  EXPECT_EQ(g.head_dim, 128);
  EXPECT_EQ(attention_params(g).total(), 5575682);
  EXPECT_EQ(kv_cache_elements_per_token(g), 512);
  EXPECT_EQ(loaded.config.attention.settings.text("attention.cca.temperature"), "raw");
}

TEST(ShippedConfigs, Gpt2SmallVariantsShareTheBase) {
  const LoadedConfig base = load_shipped("gpt2-small/base.yaml");
  for (const char* variant : {"mha", "gqa", "mla", "cca", "ccgqa"}) {
    SCOPED_TRACE(variant);
    const LoadedConfig loaded = load_shipped(std::string("gpt2-small/") + variant + ".yaml");
    EXPECT_EQ(loaded.config.attention.kind, variant);
    EXPECT_EQ(loaded.config.model.d_model, 768);
    EXPECT_EQ(loaded.config.model.n_layers, 12);
    EXPECT_EQ(loaded.config.model.vocab_size, 50304);
    EXPECT_EQ(loaded.config.train.steps, base.config.train.steps);
    EXPECT_EQ(loaded.config.run.dir, std::string("runs/gpt2-small-") + variant);
    ASSERT_EQ(loaded.files.size(), 2u);
    EXPECT_EQ(fs::path(loaded.files[1]).filename(), "base.yaml");
  }
}

TEST(ShippedConfigs, Gpt2SmallKvCacheClaims) {
  // The comments in configs/gpt2-small/*.yaml state each variant's KV cache relative to MHA.
  auto kv = [](const char* variant) {
    return kv_cache_elements_per_token(
        attention_geometry(load_shipped(std::string("gpt2-small/") + variant + ".yaml").config));
  };
  const int64_t mha = kv("mha");
  EXPECT_EQ(mha, 1536);
  EXPECT_EQ(kv("gqa") * 3, mha);    // 1/3 of MHA
  EXPECT_EQ(kv("cca") * 4, mha);    // 1/4
  EXPECT_EQ(kv("ccgqa") * 4, mha);  // 1/4
  EXPECT_EQ(kv("mla"), 352);        // 320 + 32
  const AttentionGeometry cca = attention_geometry(load_shipped("gpt2-small/cca.yaml").config);
  EXPECT_EQ(cca.n_q_heads, 3);
  EXPECT_EQ(cca.head_dim, 64);
  const AttentionGeometry ccgqa = attention_geometry(load_shipped("gpt2-small/ccgqa.yaml").config);
  EXPECT_EQ(ccgqa.n_q_heads, 6);
  EXPECT_EQ(ccgqa.n_kv_heads, 3);
}

// docs/data.md's worked example: the sources scripts/curriculum_data.sh builds, two stages
// that switch the mixture half-way, and a validation set per source.
TEST(ShippedConfigs, CurriculumExampleSwitchesTheMixtureHalfWay) {
  const Config c = load_shipped("examples/curriculum.yaml").config;
  ASSERT_EQ(c.data.train_sources.size(), 2u);
  EXPECT_EQ(c.data.train_sources[0].path, "data/curriculum/glosses");
  EXPECT_EQ(c.data.train_sources[1].path, "data/curriculum/articles");
  ASSERT_EQ(c.data.stages.size(), 2u);
  EXPECT_EQ(c.data.stages[1].start_step * 2, c.train.steps);
  ASSERT_EQ(c.data.val_sources.size(), 2u);
  EXPECT_EQ(c.data.val_sources[1].name, "articles");
}

TEST(ShippedConfigs, QuickstartIsASmallCcaModel) {
  const LoadedConfig loaded = load_shipped("quickstart.yaml");
  const AttentionGeometry g = attention_geometry(loaded.config);
  EXPECT_EQ(g.kind, "cca");
  EXPECT_EQ(g.head_dim, 64);
  EXPECT_EQ(g.n_q_heads, 2);
  EXPECT_EQ(g.n_kv_heads, 2);
  EXPECT_EQ(loaded.config.model.vocab_size, 8192);
  EXPECT_EQ(loaded.config.run.dir, "runs/quickstart");
}

}  // namespace
}  // namespace cca
