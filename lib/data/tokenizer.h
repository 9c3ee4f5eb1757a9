// Tokenizers behind one interface: SentencePiece models (Debian's libsentencepiece; `.model`
// files, which we can also train from our text sources) and Hugging Face byte-level BPE
// (`tokenizer.json`: GPT-2, Llama-3, Qwen; bpe_tokenizer.h). The file's name picks the kind. The
// wrapper is thread-safe and knows its file's checksum, so shards can record which tokenizer made
// them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace cca::data {

class DocumentReader;
class BpeTokenizer;

// One thread's memo of word encodings for Tokenizer::encode_cached. Not thread-safe: give each
// worker its own.
class EncodeCache {
 public:
  explicit EncodeCache(size_t max_entries = 1 << 20) : max_entries_(max_entries) {}
  size_t size() const { return map_.size(); }

 private:
  friend class Tokenizer;
  friend class BpeTokenizer;
  size_t max_entries_;
  std::unordered_map<std::string, std::vector<int32_t>> map_;
};

// A path naming a tokenizer.json (ends in ".json"): read as byte-level BPE, not SentencePiece.
bool is_tokenizer_json(const std::string& path);

class Tokenizer {
 public:
  enum class Kind { sentencepiece, byte_level_bpe };

  // Throws cca::Error naming `path` when it is missing, not a SentencePiece model (.model) or not
  // a supported tokenizer.json (.json; the message names the JSON path and value).
  explicit Tokenizer(const std::string& path);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  const std::string& path() const { return path_; }
  uint64_t file_xxh64() const { return file_xxh64_; }
  Kind kind() const { return bpe_ ? Kind::byte_level_bpe : Kind::sentencepiece; }
  // The name a dataset folder gives its copy: "tokenizer.model" or "tokenizer.json".
  const char* dataset_file_name() const;
  int64_t vocab_size() const;
  int32_t bos_id() const;  // -1 when the model has none
  int32_t eos_id() const;
  bool byte_fallback() const;

  // Appends the ids of `text` to `out`. Safe to call from several threads at once.
  void encode(std::string_view text, std::vector<int32_t>& out) const;
  std::vector<int32_t> encode(std::string_view text) const;
  // The same ids as encode(), much faster on natural text: the text is cut before each space
  // that follows a non-space, each word is encoded once and memoised in `cache`. Used only when
  // word_cache_safe(); otherwise it is encode(). (Byte-level BPE memoises its pre-tokenizer's
  // pieces, always safe; its encode() does the same with a cache of its own.)
  void encode_cached(std::string_view text, std::vector<int32_t>& out, EncodeCache& cache) const;
  // True when no piece can span such a cut (no piece holds "▁" after another character), the
  // model adds a dummy prefix, and a probe of awkward strings encodes identically both ways.
  bool word_cache_safe() const { return word_cache_safe_; }
  // Throws cca::Error for ids outside the vocabulary. SentencePiece drops control tokens (BOS,
  // EOS); byte-level BPE spells every token, special ones included, and repairs invalid UTF-8
  // (a character cut between tokens) with U+FFFD, as `tokenizers` does.
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string piece(int32_t id) const;

 private:
  std::string path_;
  bool check_word_cache_safe() const;
  void encode_words(std::string_view text, std::vector<int32_t>& out, EncodeCache& cache) const;

  uint64_t file_xxh64_ = 0;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::unique_ptr<BpeTokenizer> bpe_;
  bool word_cache_safe_ = false;
  int32_t space_id_ = -1;  // the piece "▁" alone
};

// Text to print as ids arrive (cca-generate): each push() returns what the new id adds to the
// decoded text. The whole sequence is decoded each time, so SentencePiece's spaces come out right;
// a trailing U+FFFD (a character whose remaining bytes are still to come) is held back until the
// next id completes it, so byte-level tokens never print a replacement character mid-stream.
class DecodeStream {
 public:
  DecodeStream(const Tokenizer& tokenizer, std::vector<int32_t> ids);
  const std::string& shown() const { return shown_; }  // the text printed so far
  std::string push(int32_t id);
  std::string finish();  // what was held back, if anything

 private:
  std::string advance(bool final);

  const Tokenizer& tokenizer_;
  std::vector<int32_t> ids_;
  std::string shown_;
};

struct TokenizerTrainOptions {
  std::string output_prefix;  // writes PREFIX.model and PREFIX.vocab
  int64_t vocab_size = 8192;
  std::string model_type = "bpe";  // bpe | unigram
  bool byte_fallback = false;      // unknown characters become byte tokens instead of <unk>
  double character_coverage = 0.9995;
  // Training lines sampled (reservoir sampling) from the corpus; 0 = all of them.
  int64_t max_sentences = 1000000;
  int threads = 0;  // 0 = hardware concurrency
  uint32_t seed = 1;
};

struct TokenizerTrainResult {
  std::string model_path;
  std::string vocab_path;
  int64_t documents = 0;
  int64_t sentences = 0;  // lines handed to the trainer
  int64_t vocab_size = 0;
  uint64_t xxh64 = 0;
};

// Trains on the documents of `reader`, one non-blank line per training sentence. Normalisation is
// the identity and whitespace is kept, so decode(encode(text)) == text for valid UTF-8 (newlines
// become byte tokens when byte_fallback is on). Throws cca::Error on bad options or empty input.
TokenizerTrainResult train_tokenizer(DocumentReader& reader, const TokenizerTrainOptions& options);

}  // namespace cca::data
