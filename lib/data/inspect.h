// `cca-data inspect`: what a shard or dataset folder holds, and (with verify) whether it is
// intact: header, token counts, checksums against the manifest, token ids against the
// vocabulary, and the first tokens decoded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cca::data {

struct InspectOptions {
  int64_t decode_tokens = 0;  // show (and decode) this many leading tokens
  std::string tokenizer;      // default: the manifest's
  bool verify = false;        // checksums and token ids of every shard
  bool entropy = false;       // unigram entropy of each split (the loss a context-free model gets)
};

// Entropy in nats of the token frequencies in `counts` (the cross-entropy a model reaches by
// predicting every token from the corpus's unigram distribution).
double unigram_entropy(const std::vector<int64_t>& counts);

struct InspectReport {
  std::string text;
  int problems = 0;  // failed checks (the text says which)
};

// Throws cca::Error when `path` cannot be read as a shard or dataset folder at all.
InspectReport inspect_path(const std::string& path, const InspectOptions& options);

}  // namespace cca::data
