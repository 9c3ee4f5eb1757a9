// The per-dataset manifest (manifest.json beside the shards): which tokenizer made the shards,
// how many tokens each split holds and a checksum per shard, so a loader can tell stale, corrupt
// or foreign shards from good ones before training on them. Format: docs/data.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cca::data {

class MappedShard;

constexpr const char* kManifestName = "manifest.json";
constexpr int kManifestFormatVersion = 1;

struct ShardEntry {
  std::string file;  // a plain file name in the manifest's folder
  int64_t tokens = 0;
  uint64_t bytes = 0;
  uint64_t xxh64 = 0;  // of the whole file
};

struct SplitInfo {
  int64_t documents = 0;
  int64_t tokens = 0;
  std::vector<ShardEntry> shards;
};

// Where one source of a corpus built from packages came from (cca-data corpus), and what it
// contributed after cleaning and de-duplication. Informational, like `sources`.
struct SourceProvenance {
  std::string name;      // "dict-wn"
  std::string registry;  // "debian" or "pypi"
  std::string packages;  // "dict-wn 1:3.0-37"; several joined with ", "
  std::string licence;
  int64_t documents = 0;
  int64_t tokens = 0;           // without separators
  int64_t bytes = 0;            // of clean text
  int64_t duplicate_bytes = 0;  // removed as exact or near duplicates of earlier text
};

struct Manifest {
  // Tokenizer.
  std::string tokenizer_file;  // relative to the manifest's folder (or absolute)
  uint64_t tokenizer_xxh64 = 0;
  int64_t vocab_size = 0;
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  // Layout.
  std::string separator = "bos";  // "bos": BOS before each document; "eos": EOS after each
  int32_t shard_version = 1;
  SplitInfo train;
  SplitInfo val;
  // Provenance (informational).
  std::vector<std::string> sources;
  int64_t source_bytes = 0;
  double val_fraction = 0;
  int64_t skipped_invalid_utf8 = 0;          // documents dropped for invalid UTF-8
  int64_t skipped_empty = 0;                 // documents dropped for holding no text
  std::vector<SourceProvenance> provenance;  // empty unless built by `cca-data corpus`

  const SplitInfo& split(const std::string& name) const;  // "train" or "val"
  // The entry for `file_name` in either split, or nullptr.
  const ShardEntry* find_shard(const std::string& file_name) const;
};

std::string render_manifest(const Manifest& manifest);
// Writes atomically (temporary file, then rename). Throws cca::Error naming the file.
void write_manifest(const Manifest& manifest, const std::string& path);
// Parses and validates; every problem is a cca::Error "<path>: <what is wrong>".
Manifest parse_manifest(const std::string& text, const std::string& path);
Manifest read_manifest(const std::string& path);

// Checks a mapped shard against its entry: token count and size always, the XXH64 checksum when
// `checksum` is set. Throws cca::Error naming the shard and the manifest.
void verify_shard(const MappedShard& shard, const ShardEntry& entry,
                  const std::string& manifest_path, bool checksum);

}  // namespace cca::data
