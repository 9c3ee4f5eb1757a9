// Text -> token shards: the `cca-data prepare` pipeline. Documents are read in a fixed order,
// tokenised on several threads, and written in that same order, so the output does not depend on
// the thread count. Each document is preceded by BOS (or followed by EOS); every k-th document
// (k = 1 / val_fraction) goes to the validation split. The new dataset is built in a staging
// folder and moved into place only when complete, so a failure never damages an existing one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/manifest.h"
#include "data/text_source.h"
#include "data/tokenizer.h"

namespace cca::data {

struct PrepareOptions {
  std::vector<std::string> inputs;
  // SentencePiece model or tokenizer.json; copied into the output as tokenizer.model / .json
  std::string tokenizer;
  std::string output_dir;  // gets train_NNNNNN.bin, val_NNNNNN.bin, the tokenizer, manifest
  double val_fraction = 0.01;
  int64_t shard_tokens = 100000000;  // per shard, as in llm.c's FineWeb shards
  int threads = 0;                   // 0 = hardware concurrency
  std::string separator = "bos";     // bos | eos
  SourceOptions source;
  bool force = false;    // replace an existing dataset in output_dir
  bool progress = true;  // draw the bar when stderr is a terminal
};

struct PrepareResult {
  Manifest manifest;
  std::string manifest_path;
  double seconds = 0;
  int64_t documents = 0;
  uint64_t bytes = 0;
};

PrepareResult prepare_dataset(const PrepareOptions& options);

// Encodes docs[i] into out[i] on one thread per cache (contiguous ranges), with
// Tokenizer::encode_cached when `use_cache`, else encode(); rethrows the first error.
void encode_documents(const Tokenizer& tok, const std::vector<Document>& docs,
                      std::vector<std::vector<int32_t>>& out, std::vector<EncodeCache>* caches,
                      bool use_cache);

// The progress bar's text: "45.2% 18.1 MiB/40.0 MiB 5.3 MiB/s 1.2M tok/s ETA 0:04".
std::string prepare_progress_text(uint64_t done, uint64_t total, int64_t tokens, double seconds);

// "train_000003.bin"
std::string shard_file_name(const std::string& split, int index);
// True when doc `index` belongs to the validation split for `fraction` (spread evenly).
bool is_validation_document(int64_t index, double fraction);

}  // namespace cca::data
