// `cca-data builtin`: the built-in corpus end to end. GCIDE entries -> corpus.jsonl -> an 8192
// BPE tokenizer with byte fallback -> train/val shards and a manifest in data/builtin/, the data
// configs/quickstart.yaml trains on.
#pragma once

#include <cstdint>
#include <string>

#include "data/gcide.h"
#include "data/manifest.h"

namespace cca::data {

struct BuiltinOptions {
  std::string output_dir = "data/builtin";
  std::string dict_path = kGcideDict;
  std::string index_path = kGcideIndex;
  int64_t vocab_size = 8192;
  // Lines sampled for tokenizer training: bounds its time and memory on a 2-core machine.
  int64_t tokenizer_sentences = 50000;
  double val_fraction = 0.02;
  int64_t shard_tokens = 1 << 20;  // several shards, so the loader's shard shuffle matters
  int threads = 0;
  bool force = false;  // rebuild even when a dataset is already there
  bool progress = true;
};

struct BuiltinResult {
  bool rebuilt = false;  // false: an existing dataset was kept
  Manifest manifest;
  std::string manifest_path;
  GcideStats corpus;
  double corpus_seconds = 0;
  double tokenizer_seconds = 0;
  double prepare_seconds = 0;
};

BuiltinResult build_builtin(const BuiltinOptions& options);

}  // namespace cca::data
