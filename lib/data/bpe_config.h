// What a Hugging Face tokenizer.json with a byte-level BPE model says, read and checked: the
// vocabulary and merges, the added tokens, the normalizer and pre-tokenizer chains and which
// special tokens begin and end a document. Anything this reader cannot reproduce exactly is a
// cca::Error naming the file, the JSON path and value, and what is supported (docs/data.md).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace cca::data {

struct BpeAddedToken {
  int32_t id = -1;
  std::string content;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;  // matched in the normalized text instead of the raw text
};

enum class UnicodeForm { nfc, nfd, nfkc, nfkd };

enum class SplitBehavior { isolated, removed, merged_with_previous, merged_with_next, contiguous };

// One step of the pre-tokenizer chain, applied to every piece the previous steps made.
struct PreTokenizerStep {
  enum class Kind { split, byte_level } kind = Kind::split;
  // split (also byte_level with use_regex, whose pattern is GPT-2's)
  std::string pattern;  // Oniguruma syntax, as in the file
  SplitBehavior behavior = SplitBehavior::isolated;
  bool invert = false;
  // byte_level
  bool add_prefix_space = false;
  bool use_regex = false;
};

struct BpeConfig {
  std::vector<std::pair<std::string, int32_t>> vocab;       // token (byte-level characters) -> id
  std::vector<std::pair<std::string, std::string>> merges;  // by rank
  bool ignore_merges = false;
  std::string unk_token;  // empty: characters outside the vocabulary are dropped
  bool fuse_unk = false;
  std::vector<BpeAddedToken> added_tokens;
  std::vector<UnicodeForm> normalizers;         // applied in order
  std::vector<PreTokenizerStep> pre_tokenizer;  // ends with the byte-level step
  int32_t bos_id = -1;
  int32_t eos_id = -1;
};

// GPT-2's split pattern, which ByteLevel uses when use_regex is true.
extern const char* const kGpt2SplitPattern;

// Parses `text`, the contents of `path` (named in every error).
BpeConfig parse_bpe_config(const std::string& text, const std::string& path);

}  // namespace cca::data
