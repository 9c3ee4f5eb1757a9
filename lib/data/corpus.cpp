#include "data/corpus.h"

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

#include "data/prepare.h"
#include "data/text_source.h"
#include "data/tokenizer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/json.h"
#include "util/log.h"

namespace cca::data {
namespace {

constexpr const char* kTextDir = "text";

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Reads, cleans and de-duplicates one source into `jsonl_path`; fills its provenance counts.
CorpusSourceCounts write_source(const CorpusSource& source, const CorpusPaths& paths,
                                Deduplicator& dedup, const std::string& jsonl_path,
                                SourceProvenance& provenance) {
  CorpusSourceCounts counts;
  counts.name = source.name;
  std::vector<Document> docs = read_corpus_source(source, paths);
  std::ofstream out(jsonl_path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(format("{}: cannot create: {}", jsonl_path, std::strerror(errno)));
  std::string line;
  for (Document& doc : docs) {
    ++counts.documents_read;
    counts.bytes_read += static_cast<int64_t>(doc.text.size());
    if (!dedup.filter(doc.text, counts.dedup)) continue;
    line = "{\"text\":";
    append_json_string(line, doc.text);
    line += "}\n";
    out << line;
    ++provenance.documents;
    provenance.bytes += static_cast<int64_t>(doc.text.size());
  }
  out.flush();
  if (!out) throw Error(format("{}: write failed", jsonl_path));
  if (provenance.documents == 0) {
    throw Error(format("{}: no text left after cleaning and de-duplication", source.name));
  }
  provenance.duplicate_bytes = counts.dedup.bytes_removed;
  return counts;
}

// Tokens of each source's documents (no separators), with the corpus's own tokenizer.
int64_t count_tokens(const Tokenizer& tok, const std::string& jsonl_path, int threads) {
  DocumentReader reader({jsonl_path}, SourceOptions{});
  const unsigned workers = threads > 0 ? static_cast<unsigned>(threads)
                                       : std::max(1u, std::thread::hardware_concurrency());
  std::vector<EncodeCache> caches(workers);
  std::vector<Document> batch;
  std::vector<std::vector<int32_t>> ids;
  int64_t tokens = 0;
  auto flush = [&] {
    encode_documents(tok, batch, ids, &caches, tok.word_cache_safe());
    for (const auto& v : ids) tokens += static_cast<int64_t>(v.size());
    batch.clear();
  };
  Document doc;
  while (reader.next(doc)) {
    batch.push_back(std::move(doc));
    if (batch.size() == 4096) flush();
  }
  flush();
  return tokens;
}

std::string train_corpus_tokenizer(const CorpusOptions& o, const std::vector<std::string>& inputs,
                                   const std::string& prefix) {
  TokenizerTrainOptions tok;
  tok.output_prefix = prefix;
  tok.vocab_size = o.vocab_size;
  tok.model_type = "bpe";
  tok.byte_fallback = true;
  tok.character_coverage = 0.9999;  // rare Greek and Hebrew letters go to bytes
  tok.max_sentences = o.tokenizer_sentences;
  tok.threads = o.threads;
  DocumentReader reader(inputs, SourceOptions{});
  const TokenizerTrainResult trained = train_tokenizer(reader, tok);
  log::info("tokenizer: BPE, vocabulary {}, byte fallback, from {} sampled lines",
            trained.vocab_size, std::min(trained.sentences, o.tokenizer_sentences));
  return trained.model_path;
}

}  // namespace

CorpusResult build_corpus(const CorpusOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  CorpusResult result;
  result.manifest_path = files::join(o.output_dir, kManifestName);
  if (!o.force && files::exists(result.manifest_path)) {
    result.manifest = read_manifest(result.manifest_path);
    return result;
  }
  const std::vector<CorpusSource> sources = select_corpus_sources(o.sources);
  require_sources(sources, o.paths);
  const std::string text_dir = files::join(o.output_dir, kTextDir);
  const std::string work = files::join(o.output_dir, ".corpus.partial");
  files::remove_tree(text_dir);
  files::remove_tree(work);
  files::make_directories(text_dir);
  files::make_directories(work);

  Deduplicator dedup(o.dedup);
  std::vector<SourceProvenance> provenance;
  std::vector<std::string> inputs;
  for (size_t i = 0; i < sources.size(); ++i) {
    const CorpusSource& s = sources[i];
    SourceProvenance p{s.name, s.registry, source_packages(s, o.paths), s.licence};
    const std::string number = (i + 1 < 10 ? "0" : "") + std::to_string(i + 1);
    inputs.push_back(files::join(text_dir, number + "-" + s.name + ".jsonl"));
    result.sources.push_back(write_source(s, o.paths, dedup, inputs.back(), p));
    const CorpusSourceCounts& c = result.sources.back();
    log::info(
        "{}: {} of {} documents kept ({}); removed as duplicates: {} ({} paragraphs, {} "
        "near-duplicate documents, {} documents left empty)",
        s.name, p.documents, c.documents_read, human_bytes(p.bytes), human_bytes(p.duplicate_bytes),
        c.dedup.paragraphs_removed, c.dedup.near_duplicates, c.dedup.documents_removed);
    provenance.push_back(std::move(p));
  }

  const std::string model = train_corpus_tokenizer(o, inputs, files::join(work, "tokenizer"));
  PrepareOptions prep;
  prep.inputs = inputs;
  prep.tokenizer = model;
  prep.output_dir = o.output_dir;
  prep.val_fraction = o.val_fraction;
  prep.shard_tokens = o.shard_tokens;
  prep.threads = o.threads;
  prep.force = true;  // the user asked for a (re)build
  prep.progress = o.progress;
  result.manifest = prepare_dataset(prep).manifest;
  files::rename_path(files::join(work, "tokenizer.vocab"),
                     files::join(o.output_dir, "tokenizer.vocab"));
  files::remove_tree(work);

  const Tokenizer tok(files::join(o.output_dir, result.manifest.tokenizer_file));
  for (size_t i = 0; i < inputs.size(); ++i)
    provenance[i].tokens = count_tokens(tok, inputs[i], o.threads);
  result.manifest.provenance = std::move(provenance);
  write_manifest(result.manifest, result.manifest_path);
  result.rebuilt = true;
  result.seconds = seconds_since(start);
  return result;
}

std::string corpus_report(const CorpusResult& r) {
  std::string out = format("{:<20} {:>9} {:>12} {:>11} {:>11}  {}\n", "source", "documents",
                           "tokens", "bytes", "dup bytes", "packages (licence)");
  int64_t docs = 0, tokens = 0, bytes = 0, dup = 0;
  for (const SourceProvenance& p : r.manifest.provenance) {
    out += format("{:<20} {:>9} {:>12} {:>11} {:>11}  {} ({})\n", p.name, p.documents, p.tokens,
                  p.bytes, p.duplicate_bytes, p.packages, p.licence);
    docs += p.documents, tokens += p.tokens, bytes += p.bytes, dup += p.duplicate_bytes;
  }
  out += format("{:<20} {:>9} {:>12} {:>11} {:>11}\n", "total", docs, tokens, bytes, dup);
  const Manifest& m = r.manifest;
  out += format(
      "train: {} documents, {} tokens in {} shards; val: {} documents, {} tokens "
      "(vocabulary {})\n",
      m.train.documents, m.train.tokens, m.train.shards.size(), m.val.documents, m.val.tokens,
      m.vocab_size);
  return out;
}

}  // namespace cca::data
