// Opening a split's shards for training: resolves a file, folder or glob, maps every shard,
// validates it against the manifest beside it (listed, token count, checksum) and checks the
// manifest's tokenizer and vocabulary against what the run expects. Plain llm.c shards without a
// manifest load as they are.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/manifest.h"
#include "data/shard.h"

namespace cca::data {

struct DatasetOptions {
  // When set, the manifests must record this file's checksum (the run's data.tokenizer).
  std::string tokenizer;
  // The model's vocabulary: the manifests' vocabulary must fit, and the loader checks every token
  // against it. 0 = no check.
  int64_t vocab_size = 0;
  // XXH64 of every shard against its manifest entry, on open (multi-threaded).
  bool verify_checksums = true;
};

struct ShardSet {
  std::string spec;                                        // as given, for messages
  std::vector<std::shared_ptr<const MappedShard>> shards;  // in path order
  int64_t tokens = 0;
  // The manifest the shards came with (the first one when they span folders), if any.
  std::shared_ptr<const Manifest> manifest;
  std::string manifest_path;
  int64_t vocab_size = 0;  // DatasetOptions::vocab_size, kept for the loader's token checks
  // XXH64 over the shards' names and token counts: identifies the data a loader state refers to.
  uint64_t fingerprint = 0;
};

// Resolves `spec`: a shard file, a glob, or a folder (with a manifest: that manifest's `split`
// shards; without: every *.bin in it). Throws cca::Error naming the file and the problem.
ShardSet open_shards(const std::string& spec, const std::string& split,
                     const DatasetOptions& options = {});

// Where the manifest of the shards `spec` names (data.train) would be: inside a dataset folder,
// beside a shard file or glob.
std::string manifest_path_for_shards(const std::string& spec);

// The tokenizer model a manifest names, as a path (relative names are beside the manifest).
std::string manifest_tokenizer_path(const std::string& manifest_path, const Manifest& manifest);

}  // namespace cca::data
