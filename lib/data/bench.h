// Measurements behind `cca-bench data`: tokenizer encode throughput and loader throughput
// (tokens/s, and the training thread's CPU time per batch, which is what the loader costs the
// step). The app renders the result as JSON.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/loader.h"

namespace cca::data {

struct EncodeBenchResult {
  int threads = 0;
  bool word_cache = false;  // Tokenizer::encode_cached's fast path was used
  uint64_t bytes = 0;
  int64_t documents = 0;
  int64_t tokens = 0;
  double seconds = 0;
  double mb_per_second() const { return seconds > 0 ? bytes / 1e6 / seconds : 0; }
  double tokens_per_second() const { return seconds > 0 ? tokens / seconds : 0; }
};

// Reads up to `max_bytes` of documents from `inputs` into memory, then times their encoding the
// way prepare does (one word cache per thread, cold at the start).
EncodeBenchResult bench_encode(const std::string& tokenizer, const std::vector<std::string>& inputs,
                               int threads, uint64_t max_bytes);

struct LoaderBenchResult {
  int64_t batches = 0;
  int64_t tokens = 0;  // input tokens delivered
  double seconds = 0;
  double caller_cpu_seconds = 0;  // CPU time of the thread calling next()
  double tokens_per_second() const { return seconds > 0 ? tokens / seconds : 0; }
  double caller_cpu_us_per_batch() const {
    return batches > 0 ? caller_cpu_seconds * 1e6 / batches : 0;
  }
};

// Times `batches` calls of next() after a short warm-up.
LoaderBenchResult bench_loader(std::shared_ptr<const ShardSet> data, const LoaderOptions& options,
                               int64_t batches);

std::string render_bench_json(const EncodeBenchResult& encode, const LoaderBenchResult& loader,
                              const LoaderOptions& options);

}  // namespace cca::data
