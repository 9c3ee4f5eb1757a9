// The lookup structures behind BpeTokenizer: GPT-2's byte <-> character alphabet, the merge table
// (pair of ids -> rank and result, applied lowest rank first), and the added-token matcher
// (leftmost-longest, with the single_word / lstrip / rstrip rules of `tokenizers`).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/bpe_config.h"

namespace cca::data {

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes for
// U+0100 onwards, so every byte sequence is a string of visible characters.
struct ByteLevelAlphabet {
  std::array<std::string, 256> chars;  // UTF-8 of each byte's character
  std::array<int16_t, 324> byte_of{};  // code point -> byte, -1 for other characters

  ByteLevelAlphabet();
  // The byte-level spelling of raw bytes.
  std::string encode(std::string_view bytes) const;
  // The bytes a token stands for. A token holding any character outside the alphabet (an added
  // token such as "<|endoftext|>" holds none, one with a space would) stands for its own UTF-8
  // bytes, as in `tokenizers`' ByteLevel decoder.
  std::string decode(std::string_view token) const;
};

const ByteLevelAlphabet& byte_level_alphabet();

class MergeTable {
 public:
  // Throws cca::Error naming the merge (model.merges[i]) whose parts or result are missing from
  // `vocab`. A pair listed twice keeps its last rank, as in `tokenizers`.
  MergeTable(const std::vector<std::pair<std::string, std::string>>& merges,
             const std::unordered_map<std::string, int32_t>& vocab);

  // Merges adjacent symbols in place until no pair has a rank: always the lowest-ranked pair,
  // the leftmost one on a tie.
  void apply(std::vector<int32_t>& symbols) const;

 private:
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t result = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  size_t home(uint64_t k) const { return (k * 0x9E3779B97F4A7C15ull) >> shift_; }
  const Slot* find(int32_t left, int32_t right) const;
  void insert(int32_t left, int32_t right, int32_t rank, int32_t result);

  std::vector<Slot> slots_;
  int shift_ = 64;
};

class AddedTokenMatcher {
 public:
  struct Entry {
    std::string form;  // what is matched: the content, normalized for normalized tokens
    const BpeAddedToken* token;
  };
  explicit AddedTokenMatcher(std::vector<Entry> entries);

  // Cuts `text` into added tokens (on_piece(span, id)) and the text between them
  // (on_piece(span, -1)); empty spans are skipped.
  void split(std::string_view text,
             const std::function<void(std::string_view, int32_t)>& on_piece) const;

 private:
  // The leftmost match at or after `from`, the longest there; false when none.
  bool find(std::string_view text, size_t from, size_t& start, const Entry*& found) const;

  std::vector<Entry> entries_;
  std::array<std::vector<const Entry*>, 256> by_first_byte_;  // longest first
};

}  // namespace cca::data
