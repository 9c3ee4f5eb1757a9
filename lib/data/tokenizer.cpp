#include "data/tokenizer.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "data/bpe_tokenizer.h"
#include "data/text_source.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/parallel.h"

// Exported by libsentencepiece but not declared in its installed headers; it silences the
// trainer's per-iteration INFO lines, which would drown our own log.
namespace sentencepiece::logging {
void SetMinLogLevel(int level);
}

namespace cca::data {

namespace {

// Feeds documents to the trainer line by line. Exceptions must not unwind through
// SentencePiece, so a failure ends the iteration and is rethrown after training returns.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(DocumentReader& reader) : reader_(reader) { Next(); }

  bool done() const override { return done_; }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override {
    if (failure_)
      return sentencepiece::util::Status(sentencepiece::util::StatusCode::kInternal,
                                         "reading the corpus failed");
    return sentencepiece::util::Status();
  }
  void Next() override {
    try {
      advance();
    } catch (...) {
      failure_ = std::current_exception();
      done_ = true;
    }
  }
  void rethrow_failure() const {
    if (failure_) std::rethrow_exception(failure_);
  }
  int64_t documents() const { return documents_; }
  int64_t sentences() const { return sentences_; }

 private:
  void advance() {
    for (;;) {
      while (pos_ < doc_.text.size()) {
        size_t end = doc_.text.find('\n', pos_);
        if (end == std::string::npos) end = doc_.text.size();
        line_.assign(doc_.text, pos_, end - pos_);
        pos_ = end + 1;
        if (line_.find_first_not_of(" \t\r") != std::string::npos) {
          ++sentences_;
          return;
        }
      }
      if (!reader_.next(doc_)) {
        done_ = true;
        return;
      }
      ++documents_;
      pos_ = 0;
    }
  }

  DocumentReader& reader_;
  Document doc_;
  size_t pos_ = 0;
  std::string line_;
  bool done_ = false;
  int64_t documents_ = 0;
  int64_t sentences_ = 0;
  std::exception_ptr failure_;
};

void check_train_options(const TokenizerTrainOptions& o) {
  if (o.output_prefix.empty()) throw Error("tokenizer output prefix is empty");
  if (o.model_type != "bpe" && o.model_type != "unigram") {
    throw Error(format("model type \"{}\" (allowed: bpe, unigram)", o.model_type));
  }
  const int64_t floor = o.byte_fallback ? 256 + 3 + 1 : 3 + 1;
  if (o.vocab_size < floor || o.vocab_size > (int64_t{1} << 24)) {
    throw Error(format("vocabulary size {} is outside [{}, {}]{}", o.vocab_size, floor,
                       int64_t{1} << 24, o.byte_fallback ? " (byte fallback needs 256 ids)" : ""));
  }
  if (!(o.character_coverage > 0 && o.character_coverage <= 1)) {
    throw Error("character coverage must be in (0, 1]");
  }
  if (o.max_sentences < 0) throw Error("max sentences must be >= 0");
}

std::unordered_map<std::string, std::string> trainer_args(const TokenizerTrainOptions& o) {
  const int threads = thread_count(o.threads);
  return {
      {"model_prefix", o.output_prefix},
      {"vocab_size", std::to_string(o.vocab_size)},
      {"model_type", o.model_type},
      {"byte_fallback", o.byte_fallback ? "true" : "false"},
      {"character_coverage", format("{}", o.character_coverage)},
      {"input_sentence_size", std::to_string(o.max_sentences)},
      {"shuffle_input_sentence", "true"},
      {"num_threads", std::to_string(threads)},
      // Lossless: no Unicode normalisation, whitespace kept as written.
      {"normalization_rule_name", "identity"},
      {"remove_extra_whitespaces", "false"},
      {"split_digits", "true"},
      {"allow_whitespace_only_pieces", "true"},
      {"max_sentence_length", "16384"},
      // Fixed special ids: <unk>=0, <s>=1 (BOS), </s>=2 (EOS), no padding id.
      {"unk_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"pad_id", "-1"},
      // A small corpus may not support the full vocabulary; train what it supports.
      {"hard_vocab_limit", "false"},
  };
}

}  // namespace

bool is_tokenizer_json(const std::string& path) {
  return path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
}

Tokenizer::Tokenizer(const std::string& path) : path_(path) {
  const std::string bytes = files::read_file(path, "tokenizer");
  file_xxh64_ = xxh64(bytes);
  if (is_tokenizer_json(path)) {
    bpe_ = std::make_unique<BpeTokenizer>(bytes, path);
    word_cache_safe_ = true;
    return;
  }
  sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp_->LoadFromSerializedProto(bytes);
  if (!status.ok()) {
    throw Error(format("{}: not a SentencePiece model: {}", path, status.ToString()));
  }
  if (sp_->GetPieceSize() <= 0) throw Error(format("{}: the model has an empty vocabulary", path));
  space_id_ = sp_->PieceToId("\xE2\x96\x81");
  word_cache_safe_ = check_word_cache_safe();
}

Tokenizer::~Tokenizer() = default;

const char* Tokenizer::dataset_file_name() const {
  return bpe_ ? "tokenizer.json" : "tokenizer.model";
}

int64_t Tokenizer::vocab_size() const {
  return bpe_ ? bpe_->vocab_size() : sp_->GetPieceSize();
}
int32_t Tokenizer::bos_id() const {
  return bpe_ ? bpe_->bos_id() : sp_->bos_id();
}
int32_t Tokenizer::eos_id() const {
  return bpe_ ? bpe_->eos_id() : sp_->eos_id();
}
bool Tokenizer::byte_fallback() const {
  if (bpe_) return false;
  const int id = sp_->PieceToId("<0x00>");
  return id != sp_->unk_id() && sp_->IsByte(id);
}

void Tokenizer::encode(std::string_view text, std::vector<int32_t>& out) const {
  if (bpe_) {
    EncodeCache cache(1 << 16);  // repeated words within the text
    return bpe_->encode(text, out, cache);
  }
  std::vector<int> ids;
  const auto status = sp_->Encode(text, &ids);
  if (!status.ok()) throw Error(format("{}: encoding failed: {}", path_, status.ToString()));
  out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  encode(text, out);
  return out;
}

namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581, SentencePiece's space
constexpr size_t kMaxCachedWord = 64;

// True when `piece` holds "▁" after some other character, i.e. could span a word cut.
bool spans_word_start(std::string_view piece) {
  size_t lead = 0;
  while (piece.compare(lead, kSpaceSymbol.size(), kSpaceSymbol) == 0) lead += kSpaceSymbol.size();
  return piece.find(kSpaceSymbol, lead) != std::string_view::npos;
}

}  // namespace

// Cuts before every space that follows a non-space. The first word is encoded as it is (the
// model's dummy prefix gives it its leading "▁"); later words drop their first space, which the
// dummy prefix then restores, so each word's normalised form equals its slice of the whole text.
void Tokenizer::encode_words(std::string_view text, std::vector<int32_t>& out,
                             EncodeCache& cache) const {
  size_t start = 0;
  bool first = true;
  while (start < text.size()) {
    size_t end = start + 1;
    while (end < text.size() && !(text[end] == ' ' && text[end - 1] != ' ')) ++end;
    std::string_view word = text.substr(start, end - start);
    if (!first) word.remove_prefix(1);  // the cut space
    first = false;
    start = end;
    if (word.empty()) {
      out.push_back(space_id_);  // a trailing space
    } else if (word.size() > kMaxCachedWord) {
      encode(word, out);
    } else {
      std::string key(word);
      auto it = cache.map_.find(key);
      if (it == cache.map_.end()) {
        if (cache.map_.size() >= cache.max_entries_) cache.map_.clear();
        it = cache.map_.emplace(std::move(key), encode(word)).first;
      }
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
  }
}

void Tokenizer::encode_cached(std::string_view text, std::vector<int32_t>& out,
                              EncodeCache& cache) const {
  if (bpe_) {
    bpe_->encode(text, out, cache);
  } else if (word_cache_safe_) {
    encode_words(text, out, cache);
  } else {
    encode(text, out);
  }
}

// Strings whose encoding depends on every assumption encode_words makes: spaces kept and turned
// into "▁", a dummy prefix, no normalisation of tabs, newlines or Unicode.
constexpr const char* kWordCacheProbes[] = {
    "Hello world",
    "  leading and  double  spaces",
    "trailing space ",
    "trailing two  ",
    " x",
    "x",
    "   ",
    " ",
    "tab\there\t and\ttabs",
    "new\nline and\n\n more\n",
    "word\r\nwindows",
    "unicode caf\xC3\xA9 \xE2\x9C\x93 \xF0\x9F\x98\x80 \xE6\x97\xA5\xE6\x9C\xAC text",
    "numbers 12345 and 3.14, (parens) [1913 Webster] --Bp. Hall.",
    "UPPER lower MiXeD \xEF\xBC\xA1",
};

bool Tokenizer::check_word_cache_safe() const {
  if (space_id_ < 0 || space_id_ == sp_->unk_id()) return false;
  const int n = sp_->GetPieceSize();
  for (int id = 0; id < n; ++id) {
    if (spans_word_start(sp_->IdToPiece(id))) return false;
  }
  EncodeCache cache;
  for (const char* probe : kWordCacheProbes) {
    std::vector<int32_t> whole, words;
    encode(probe, whole);
    encode_words(probe, words, cache);
    if (whole != words) return false;
  }
  return true;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  if (bpe_) return bpe_->decode(ids);
  const int64_t vocab = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      throw Error(
          format("{}: cannot decode token id {} (vocabulary size {})", path_, ids[i], vocab));
    }
  }
  std::string text;
  const auto status = sp_->Decode(std::vector<int>(ids.begin(), ids.end()), &text);
  if (!status.ok()) throw Error(format("{}: decoding failed: {}", path_, status.ToString()));
  return text;
}

std::string Tokenizer::piece(int32_t id) const {
  if (bpe_) return bpe_->piece(id);
  if (id < 0 || id >= vocab_size()) return format("<invalid id {}>", id);
  return sp_->IdToPiece(id);
}

DecodeStream::DecodeStream(const Tokenizer& tokenizer, std::vector<int32_t> ids)
    : tokenizer_(tokenizer), ids_(std::move(ids)) {
  advance(false);
}

std::string DecodeStream::push(int32_t id) {
  ids_.push_back(id);
  return advance(false);
}

std::string DecodeStream::finish() {
  return advance(true);
}

std::string DecodeStream::advance(bool final) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  const std::string text = tokenizer_.decode(ids_);
  size_t stable = text.size();
  while (!final && stable >= shown_.size() + kReplacement.size() &&
         text.compare(stable - kReplacement.size(), kReplacement.size(), kReplacement) == 0) {
    stable -= kReplacement.size();
  }
  // A tokenizer may re-spell earlier text as ids arrive; print only what extends it.
  if (stable < shown_.size() || text.compare(0, shown_.size(), shown_) != 0) return {};
  std::string added = text.substr(shown_.size(), stable - shown_.size());
  shown_.append(added);
  return added;
}

TokenizerTrainResult train_tokenizer(DocumentReader& reader, const TokenizerTrainOptions& options) {
  check_train_options(options);
  files::make_directories(files::parent_path(options.output_prefix));
  sentencepiece::logging::SetMinLogLevel(log::enabled(log::Level::debug) ? 0 : 1);
  sentencepiece::SetRandomGeneratorSeed(options.seed);

  LineIterator lines(reader);
  lines.rethrow_failure();
  if (lines.done()) {
    const SourceCounters& c = reader.counters();
    throw Error(
        format("empty corpus: the inputs hold no text to train a tokenizer on ({} empty "
               "documents, {} skipped for invalid UTF-8)",
               c.skipped_empty, c.skipped_invalid_utf8));
  }
  const auto status = sentencepiece::SentencePieceTrainer::Train(trainer_args(options), &lines);
  lines.rethrow_failure();
  if (!status.ok()) throw Error(format("tokenizer training failed: {}", status.ToString()));

  TokenizerTrainResult result;
  result.model_path = options.output_prefix + ".model";
  result.vocab_path = options.output_prefix + ".vocab";
  result.documents = lines.documents();
  result.sentences = lines.sentences();
  const Tokenizer trained(result.model_path);
  result.vocab_size = trained.vocab_size();
  result.xxh64 = trained.file_xxh64();
  return result;
}

}  // namespace cca::data
