#include "data/prepare.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>

#include "data/shard.h"
#include "data/tokenizer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/log.h"
#include "util/parallel.h"
#include "util/progress_bar.h"

namespace cca::data {

namespace {

constexpr size_t kChunkBytes = 4 << 20;  // text tokenised per parallel round
constexpr const char* kStagingName = ".prepare.partial";

void check_options(const PrepareOptions& o) {
  if (o.output_dir.empty()) throw Error("no output folder given");
  if (o.tokenizer.empty()) throw Error("no tokenizer given");
  if (!(o.val_fraction >= 0 && o.val_fraction < 1)) {
    throw Error(format("validation fraction {} is outside [0, 1)", o.val_fraction));
  }
  if (o.shard_tokens < 1 || o.shard_tokens > kMaxShardTokens) {
    throw Error(format("shard size {} tokens is outside [1, {}]", o.shard_tokens, kMaxShardTokens));
  }
  if (o.threads < 0) throw Error("thread count must be >= 0");
  if (o.separator != "bos" && o.separator != "eos") {
    throw Error(format("separator \"{}\" (allowed: bos, eos)", o.separator));
  }
}

bool is_dataset_file(const std::string& name) {
  const bool shard = (name.rfind("train_", 0) == 0 || name.rfind("val_", 0) == 0) &&
                     name.size() > 4 && name.compare(name.size() - 4, 4, ".bin") == 0;
  return shard || name == kManifestName || name == "tokenizer.model" || name == "tokenizer.json";
}

// Sorted paths of the shards, manifest and tokenizer a previous prepare left in `dir`.
std::vector<std::string> existing_dataset_files(const std::string& dir) {
  std::vector<std::string> found;
  for (const std::string& name : files::list_directory(dir)) {
    const std::string path = files::join(dir, name);
    if (is_dataset_file(name) && files::is_regular_file(path)) found.push_back(path);
  }
  return found;
}

// The staging folder is removed whatever happens, unless commit() moved its files out.
class Staging {
 public:
  explicit Staging(const std::string& output)
      : output_(output), dir_(files::join(output, kStagingName)) {
    files::remove_tree(dir_);  // left by a run that crashed
    files::make_directories(dir_);
  }
  ~Staging() { files::remove_tree(dir_); }
  std::string path(const std::string& name) const { return files::join(dir_, name); }

  // Replaces the previous dataset's files with the staged ones.
  void commit() {
    for (const std::string& old : existing_dataset_files(output_)) files::remove_file(old);
    for (const std::string& name : files::list_directory(dir_)) {
      files::rename_path(files::join(dir_, name), files::join(output_, name));
    }
  }

 private:
  std::string output_;
  std::string dir_;
};

// One split's shard sequence: fills each shard to exactly shard_tokens before starting the next.
class SplitWriter {
 public:
  SplitWriter(std::string name, std::string dir, int32_t version, int64_t vocab_size,
              int64_t shard_tokens)
      : name_(std::move(name)),
        dir_(std::move(dir)),
        version_(version),
        vocab_size_(vocab_size),
        limit_(shard_tokens) {}

  void add_document(const std::vector<int32_t>& tokens) {
    ++info_.documents;
    size_t pos = 0;
    while (pos < tokens.size()) {
      if (!writer_) {
        const std::string file = shard_file_name(name_, static_cast<int>(info_.shards.size()));
        writer_ = std::make_unique<ShardWriter>(files::join(dir_, file), version_, vocab_size_);
      }
      const size_t room = static_cast<size_t>(limit_ - writer_->tokens());
      const size_t take = std::min(room, tokens.size() - pos);
      writer_->append(tokens.data() + pos, take);
      pos += take;
      if (writer_->tokens() == limit_) close_shard();
    }
  }

  SplitInfo finish() {
    if (writer_) close_shard();
    return info_;
  }
  int64_t tokens() const { return info_.tokens + (writer_ ? writer_->tokens() : 0); }

 private:
  void close_shard() {
    const ShardWriter::Result r = writer_->finish();
    writer_.reset();
    info_.shards.push_back({files::file_name(r.path), r.tokens, r.bytes, r.xxh64});
    info_.tokens += r.tokens;
  }

  std::string name_;
  std::string dir_;
  int32_t version_;
  int64_t vocab_size_;
  int64_t limit_;
  std::unique_ptr<ShardWriter> writer_;
  SplitInfo info_;
};

// encode_cached promises the ids of encode(). Check that on the first documents: a tokenizer
// that breaks its assumptions then falls back to plain encoding instead of making other shards.
bool fast_encoding_matches(const Tokenizer& tok, const std::vector<Document>& docs,
                           const std::vector<std::vector<int32_t>>& encoded) {
  for (size_t i = 0; i < std::min<size_t>(docs.size(), 256); ++i) {
    if (tok.encode(docs[i].text) != encoded[i]) {
      log::warn(
          "{}: word-cached encoding differs from plain encoding on {}; encoding without "
          "the cache (slower)",
          tok.path(), docs[i].origin);
      return false;
    }
  }
  return true;
}

bool read_chunk(DocumentReader& reader, std::vector<Document>& docs) {
  docs.clear();
  size_t bytes = 0;
  Document doc;
  while (bytes < kChunkBytes && reader.next(doc)) {
    bytes += doc.text.size();
    docs.push_back(std::move(doc));
  }
  return !docs.empty();
}

}  // namespace

void encode_documents(const Tokenizer& tok, const std::vector<Document>& docs,
                      std::vector<std::vector<int32_t>>& out, std::vector<EncodeCache>* caches,
                      bool use_cache) {
  out.assign(docs.size(), {});
  parallel_for(docs.size(), caches->size(), [&](size_t worker, size_t i) {
    if (use_cache) {
      tok.encode_cached(docs[i].text, out[i], (*caches)[worker]);
    } else {
      tok.encode(docs[i].text, out[i]);
    }
  });
}

std::string prepare_progress_text(uint64_t done, uint64_t total, int64_t tokens, double seconds) {
  const double fraction = total > 0 ? std::min(1.0, static_cast<double>(done) / total) : 0.0;
  const double rate = seconds > 0 ? done / seconds : 0.0;
  const double token_rate = seconds > 0 ? tokens / seconds : 0.0;
  const std::string eta =
      rate > 0 && done <= total ? render_duration((total - done) / rate) : "--:--";
  return format("{:.1f}% {}/{} {}/s {} tok/s ETA {}", 100.0 * fraction, human_bytes(done),
                human_bytes(total), human_bytes(rate), human_count(token_rate), eta);
}

std::string shard_file_name(const std::string& split, int index) {
  std::string number = std::to_string(index);
  if (number.size() < 6) number.insert(0, 6 - number.size(), '0');
  return split + "_" + number + ".bin";
}

bool is_validation_document(int64_t index, double fraction) {
  if (fraction <= 0) return false;
  return std::floor((index + 1) * fraction) > std::floor(index * fraction);
}

namespace {

Manifest manifest_for(const Tokenizer& tokenizer, const PrepareOptions& options,
                      const std::vector<std::string>& inputs, uint64_t input_bytes) {
  Manifest m;
  m.tokenizer_file = tokenizer.dataset_file_name();
  m.tokenizer_xxh64 = tokenizer.file_xxh64();
  m.vocab_size = tokenizer.vocab_size();
  m.bos_id = tokenizer.bos_id();
  m.eos_id = tokenizer.eos_id();
  m.separator = options.separator;
  m.shard_version = shard_version_for_vocab(m.vocab_size);
  m.sources = inputs;
  m.source_bytes = static_cast<int64_t>(input_bytes);
  m.val_fraction = options.val_fraction;
  return m;
}

// "prepare [######..................] 25.0% ...": the amounts are in the text, not a count.
ProgressBarStyle prepare_bar_style() {
  ProgressBarStyle style;
  style.label = "prepare";
  style.width = 24;
  style.redraw_ms = 100;
  style.show_count = false;
  return style;
}

// Reads, encodes and writes every document; fills the manifest's splits.
void tokenize_into(DocumentReader& reader, const Tokenizer& tokenizer,
                   const PrepareOptions& options, const Staging& staging, Manifest& m) {
  const int32_t separator = options.separator == "bos" ? tokenizer.bos_id() : tokenizer.eos_id();
  SplitWriter train("train", staging.path(""), m.shard_version, m.vocab_size, options.shard_tokens);
  SplitWriter val("val", staging.path(""), m.shard_version, m.vocab_size, options.shard_tokens);
  const int threads = thread_count(options.threads);
  const uint64_t total_bytes = reader.bytes_total();
  ProgressBar progress(options.progress, static_cast<int64_t>(total_bytes), prepare_bar_style());
  std::vector<Document> docs;
  std::vector<std::vector<int32_t>> encoded;
  std::vector<int32_t> tokens;
  std::vector<EncodeCache> caches(static_cast<size_t>(threads));
  bool use_cache = tokenizer.word_cache_safe();
  int64_t index = 0;
  while (read_chunk(reader, docs)) {
    encode_documents(tokenizer, docs, encoded, &caches, use_cache);
    if (index == 0 && use_cache && !fast_encoding_matches(tokenizer, docs, encoded)) {
      use_cache = false;
      encode_documents(tokenizer, docs, encoded, &caches, use_cache);
    }
    for (const std::vector<int32_t>& ids : encoded) {
      tokens.clear();
      if (options.separator == "bos") tokens.push_back(separator);
      tokens.insert(tokens.end(), ids.begin(), ids.end());
      if (options.separator == "eos") tokens.push_back(separator);
      (is_validation_document(index++, options.val_fraction) ? val : train).add_document(tokens);
    }
    const uint64_t done = reader.bytes_done();
    const int64_t tokens_written = train.tokens() + val.tokens();
    progress.update(static_cast<int64_t>(done), [&](double seconds) {
      return prepare_progress_text(done, total_bytes, tokens_written, seconds);
    });
  }
  progress.clear();
  m.train = train.finish();
  m.val = val.finish();
}

// The corpus must have yielded training text, and validation text when asked for.
void check_splits(const DocumentReader& reader, size_t files, const PrepareOptions& options,
                  const Manifest& m) {
  const SourceCounters& counters = reader.counters();
  if (counters.skipped_invalid_utf8 > 0) {
    log::warn("skipped {} documents with invalid UTF-8 (first: {})", counters.skipped_invalid_utf8,
              counters.first_invalid);
  }
  if (counters.documents == 0) {
    throw Error(
        format("empty corpus: {} input file(s) hold no usable text ({} empty, {} with "
               "invalid UTF-8)",
               files, counters.skipped_empty, counters.skipped_invalid_utf8));
  }
  if (options.val_fraction > 0 && m.val.documents == 0) {
    throw Error(
        format("{} documents are too few for a validation split of {} (the first "
               "validation document is number {}); lower --val-fraction or pass 0",
               counters.documents, options.val_fraction,
               static_cast<int64_t>(std::ceil(1 / options.val_fraction))));
  }
  if (m.train.tokens == 0) throw Error("no training documents: --val-fraction takes them all");
}

}  // namespace

PrepareResult prepare_dataset(const PrepareOptions& options) {
  check_options(options);
  const auto start = std::chrono::steady_clock::now();
  const Tokenizer tokenizer(options.tokenizer);
  const int32_t separator = options.separator == "bos" ? tokenizer.bos_id() : tokenizer.eos_id();
  if (separator < 0) {
    throw Error(format("{}: the tokenizer has no {} token to separate documents with",
                       options.tokenizer, options.separator));
  }
  const std::vector<std::string> inputs = resolve_inputs(options.inputs);
  DocumentReader reader(inputs, options.source);

  const std::string& output = options.output_dir;
  files::make_directories(output);
  const auto existing = existing_dataset_files(output);
  if (!existing.empty() && !options.force) {
    throw Error(
        format("{}: already holds a dataset ({} and {} more files); pass --force to "
               "replace it",
               output, files::file_name(existing.front()), existing.size() - 1));
  }
  Staging staging(output);
  files::copy_file(options.tokenizer, staging.path(tokenizer.dataset_file_name()));
  Manifest m = manifest_for(tokenizer, options, inputs, reader.bytes_total());
  tokenize_into(reader, tokenizer, options, staging, m);
  check_splits(reader, inputs.size(), options, m);
  m.skipped_invalid_utf8 = reader.counters().skipped_invalid_utf8;
  m.skipped_empty = reader.counters().skipped_empty;
  write_manifest(m, staging.path(kManifestName));
  staging.commit();

  PrepareResult result;
  result.manifest = std::move(m);
  result.manifest_path = files::join(output, kManifestName);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.documents = reader.counters().documents;
  result.bytes = reader.bytes_total();
  return result;
}

}  // namespace cca::data
