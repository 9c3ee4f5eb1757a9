#include "data/bench.h"

#include <chrono>

#include "data/prepare.h"
#include "data/text_source.h"
#include "data/tokenizer.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/json.h"
#include "util/parallel.h"

namespace cca::data {

EncodeBenchResult bench_encode(const std::string& tokenizer, const std::vector<std::string>& inputs,
                               int threads, uint64_t max_bytes) {
  const Tokenizer tok(tokenizer);
  DocumentReader reader(resolve_inputs(inputs), SourceOptions{});
  std::vector<Document> docs;
  EncodeBenchResult r;
  Document doc;
  while (r.bytes < max_bytes && reader.next(doc)) {
    r.bytes += doc.text.size();
    docs.push_back(std::move(doc));
  }
  if (docs.empty()) throw Error("encode benchmark: the inputs hold no text");
  r.threads = thread_count(threads);
  r.documents = static_cast<int64_t>(docs.size());
  std::vector<std::vector<int32_t>> encoded;
  std::vector<EncodeCache> caches(static_cast<size_t>(r.threads));
  r.word_cache = tok.word_cache_safe();
  const auto start = std::chrono::steady_clock::now();
  encode_documents(tok, docs, encoded, &caches, r.word_cache);
  r.seconds = seconds_since(start);
  for (const auto& ids : encoded) r.tokens += static_cast<int64_t>(ids.size());
  return r;
}

LoaderBenchResult bench_loader(std::shared_ptr<const ShardSet> data, const LoaderOptions& options,
                               int64_t batches) {
  if (batches < 1) throw Error("loader benchmark: batches must be >= 1");
  TrainLoader loader(std::move(data), options);
  for (int i = 0; i < 3; ++i) loader.next();  // warm-up: page faults, first permutations
  LoaderBenchResult r;
  const double cpu0 = thread_cpu_seconds();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < batches; ++i) {
    const Batch b = loader.next();
    r.tokens += b.batch_size * b.seq_len;
  }
  r.seconds = seconds_since(start);
  r.caller_cpu_seconds = thread_cpu_seconds() - cpu0;
  r.batches = batches;
  return r;
}

std::string render_bench_json(const EncodeBenchResult& e, const LoaderBenchResult& l,
                              const LoaderOptions& o) {
  const Json root(Json::Object{
      {"encode", Json(Json::Object{{"threads", e.threads},
                                   {"word_cache", e.word_cache},
                                   {"bytes", static_cast<int64_t>(e.bytes)},
                                   {"documents", e.documents},
                                   {"tokens", e.tokens},
                                   {"seconds", e.seconds},
                                   {"mb_per_s", e.mb_per_second()},
                                   {"tokens_per_s", e.tokens_per_second()}})},
      {"loader", Json(Json::Object{{"seq_len", o.seq_len},
                                   {"batch_size", o.batch_size},
                                   {"prefetch", o.prefetch},
                                   {"batches", l.batches},
                                   {"tokens", l.tokens},
                                   {"seconds", l.seconds},
                                   {"tokens_per_s", l.tokens_per_second()},
                                   {"caller_cpu_us_per_batch", l.caller_cpu_us_per_batch()}})}});
  return root.dump(2) + "\n";
}

}  // namespace cca::data
