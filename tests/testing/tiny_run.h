// A tiny learnable token dataset and a tiny CPU config for tests that train (in process or
// through the cca-train binary): a few milliseconds a step. Torch-free, so suites that only run
// the binary need no LibTorch.
#pragma once

#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "data/manifest.h"
#include "data/shard.h"
#include "util/files.h"
#include "util/hash.h"

namespace cca::testing {

inline constexpr int kTinyVocab = 128;

// Mostly-deterministic successor chains (token t is usually followed by 7t + 3 mod V), so the
// loss falls quickly below the unigram entropy.
inline std::vector<int32_t> chain_tokens(int64_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> tokens(static_cast<size_t>(count));
  int32_t t = 1;
  for (auto& token : tokens) {
    t = rng() % 5 == 0 ? static_cast<int32_t>(rng() % kTinyVocab) : (7 * t + 3) % kTinyVocab;
    token = t;
  }
  return tokens;
}

// Writes train_000000.bin and val_000000.bin under `dir`; returns `dir`. Another `seed` gives
// other token chains (a second source of a mixture).
inline std::string write_tiny_dataset(const std::string& dir, uint64_t seed = 11) {
  files::make_directories(dir);
  const std::pair<const char*, int64_t> splits[] = {{"train_000000.bin", 60000},
                                                    {"val_000000.bin", 4000}};
  for (const auto& [name, count] : splits) {
    data::ShardWriter writer(files::join(dir, name), data::kShardVersionU16);
    writer.append(chain_tokens(count, seed++));
    writer.finish();
  }
  return dir;
}

// A manifest for write_tiny_dataset's shards, separating documents with `separator` (token 3
// opens them, token 5 closes them; -1 = no id).
inline void write_tiny_manifest(const std::string& dir, const std::string& separator, int32_t bos,
                                int32_t eos) {
  data::Manifest m;
  m.tokenizer_file = "tokenizer.model";
  std::ofstream(dir + "/tokenizer.model") << "stand-in tokenizer bytes";
  m.tokenizer_xxh64 = xxh64_file(dir + "/tokenizer.model");
  m.vocab_size = kTinyVocab;
  m.bos_id = bos;
  m.eos_id = eos;
  m.separator = separator;
  for (auto [split, name] : {std::pair<data::SplitInfo*, const char*>{&m.train, "train_000000.bin"},
                             {&m.val, "val_000000.bin"}}) {
    const std::string path = dir + "/" + name;
    const data::MappedShard shard(path);
    split->shards.push_back({name, shard.tokens(), shard.file_bytes(), shard.checksum()});
    split->tokens = shard.tokens();
    split->documents = 1;
  }
  data::write_manifest(m, dir + "/manifest.json");
}

// A 2-layer CCA model small enough for many steps per second on one CPU thread.
inline std::string tiny_config_yaml(const std::string& data_dir, const std::string& run_dir,
                                    const std::string& extra = "") {
  return "model: {d_model: 64, n_layers: 2, vocab_size: 128, ffn_hidden: 128}\n"
         "attention: {kind: cca, n_heads: 4, rope_fraction: 0.5, cca: {q_compression: 2}}\n"
         "train: {steps: 8, seq_len: 32, micro_batch_size: 4, grad_accum: 2, eval_every: 4,\n"
         "        device: cpu, seed: 5}\n"
         "schedule: {warmup_steps: 2}\n"
         "optim: {lr: 3.0e-3}\n"
         "checkpoint: {every: 4, keep_last: 5}\n"
         "logging: {every: 1, progress_bar: false}\n"
         "data: {train: '" +
         data_dir + "/train_*.bin', val: '" + data_dir +
         "/val_*.bin',\n"
         "       val_tokens: 1024, prefetch: 2}\n"
         "run: {dir: '" +
         run_dir + "'}\n" + extra;
}

// --set overrides that turn the tiny config into a two-source mixture ("web" in `web_dir`, "code"
// in `code_dir`, both written by write_tiny_dataset) with two stages, the second from step 4 (a
// checkpoint of the tiny config), and two named validation sets.
inline std::vector<std::string> tiny_mixture_overrides(const std::string& web_dir,
                                                       const std::string& code_dir) {
  return {"data.train=[{name: web, path: '" + web_dir + "/train_*.bin', weight: 3}, {name: code, " +
              "path: '" + code_dir + "/train_*.bin', weight: 1}]",
          "data.stages=[{name: general, start_step: 0, weights: {web: 3, code: 1}}, {name: focus, "
          "start_step: 4, weights: {web: 1, code: 3}}]",
          "data.val=[{name: web, path: '" + web_dir + "/val_*.bin'}, {name: code, path: '" +
              code_dir + "/val_*.bin'}]"};
}

}  // namespace cca::testing
