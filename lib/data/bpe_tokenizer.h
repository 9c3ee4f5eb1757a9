// Byte-level BPE from a Hugging Face tokenizer.json (GPT-2, Llama-3, Qwen and the like), giving
// the ids `tokenizers` gives for encode(text, add_special_tokens=False) and its decode(ids,
// skip_special_tokens=False). The pipeline, as in `tokenizers`:
//   1. added tokens are cut out of the raw text (normalized ones out of the normalized text);
//   2. the rest is normalized (NFC, ...) and cut by the pre-tokenizer chain (Split regexes, then
//      ByteLevel: optional prefix space, GPT-2's regex when use_regex);
//   3. each piece's bytes are merged by rank (lowest-ranked adjacent pair first, leftmost on a
//      tie), or looked up whole when the model has ignore_merges.
// Step 3 is memoised per piece in the caller's EncodeCache.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "data/bpe_config.h"

namespace cca::data {

class EncodeCache;
class UnicodeRegex;
class MergeTable;
class AddedTokenMatcher;

class BpeTokenizer {
 public:
  // `text` is the file's contents; `path` names it in errors.
  BpeTokenizer(const std::string& text, const std::string& path);
  ~BpeTokenizer();
  BpeTokenizer(const BpeTokenizer&) = delete;
  BpeTokenizer& operator=(const BpeTokenizer&) = delete;

  int64_t vocab_size() const { return static_cast<int64_t>(id_tokens_.size()); }
  int32_t bos_id() const { return config_.bos_id; }
  int32_t eos_id() const { return config_.eos_id; }

  // Appends the ids of `text` (valid UTF-8, else cca::Error). Thread-safe; `cache` belongs to the
  // calling thread.
  void encode(std::string_view text, std::vector<int32_t>& out, EncodeCache& cache) const;
  // Throws cca::Error for an id outside the vocabulary or one no token has.
  std::string decode(const std::vector<int32_t>& ids) const;
  // The token as written in the file ("Ġthe"), or "<invalid id N>".
  std::string piece(int32_t id) const;

 private:
  struct Step;
  void encode_segment(std::string_view text, std::vector<int32_t>& out, EncodeCache& cache) const;
  void pre_tokenize(std::string_view text, size_t step, std::vector<int32_t>& out,
                    EncodeCache& cache) const;
  void encode_word(std::string_view word, std::vector<int32_t>& out, EncodeCache& cache) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  void build_tables();

  std::string path_;
  BpeConfig config_;
  std::vector<Step> steps_;
  std::unique_ptr<MergeTable> merges_;
  std::unique_ptr<AddedTokenMatcher> raw_tokens_;         // matched before normalization
  std::unique_ptr<AddedTokenMatcher> normalized_tokens_;  // matched after it
  std::unordered_map<std::string, int32_t> vocab_;        // for ignore_merges
  int32_t byte_ids_[256];                                 // each byte's token; -1 when none
  int32_t unk_id_ = -1;
  std::vector<std::string> id_tokens_;  // by id; empty for ids no token has
  std::vector<std::string> id_bytes_;   // what each id decodes to
  std::vector<char> id_known_;          // whether some token has the id
};

}  // namespace cca::data
