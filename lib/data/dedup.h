// Removing repeated text across the prose corpus's sources, in source order (the first copy
// stays). Two levels: a paragraph (one line of a document) whose normalised form was seen before
// is dropped (exact duplicates: the same file shipped twice, a verse quoted in a commentary);
// then a document most of whose sampled 8-word shingles were seen before is dropped whole (near
// duplicates: another edition, reflowed or re-punctuated).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cca::data {

// Lower-case ASCII letters and digits of `text`, every other run of bytes one space; non-ASCII
// UTF-8 kept as is. "The  Lord's -- word." -> "the lord s word".
std::string normalize_for_dedup(std::string_view text);

// The hashes of every 8-word window of the normalised text (none below 8 words).
std::vector<uint64_t> shingle_hashes(std::string_view normalized, int words = 8);

// A set of 64-bit hashes with open addressing: a tenth of the memory of std::unordered_set for
// the tens of millions of shingles the corpus has.
class HashSet64 {
 public:
  bool insert(uint64_t hash);  // true when it was not there
  bool contains(uint64_t hash) const;
  size_t size() const { return count_; }

 private:
  void grow();
  std::vector<uint64_t> slots_;
  size_t count_ = 0;
};

struct DedupOptions {
  // Paragraphs shorter than this (normalised bytes) always stay: "ACT I." and "Amen." repeat
  // legitimately.
  size_t min_paragraph_chars = 40;
  int shingle_words = 8;
  // Only shingles whose hash is 0 modulo this are kept: a uniform sample, a quarter of the memory.
  uint64_t shingle_sample = 4;
  // A document with at least this share of its sampled shingles already seen is a near duplicate.
  double near_duplicate_share = 0.5;
};

struct DedupCounts {
  int64_t paragraphs_removed = 0;
  int64_t documents_removed = 0;  // nothing left after paragraph removal
  int64_t near_duplicates = 0;    // documents removed by shingles
  int64_t bytes_removed = 0;
};

class Deduplicator {
 public:
  explicit Deduplicator(DedupOptions options = {}) : options_(options) {}
  // Rewrites `text` without its repeated paragraphs; false when the whole document goes.
  // Counts go to `counts`.
  bool filter(std::string& text, DedupCounts& counts);

 private:
  std::vector<uint64_t> sampled_shingles(std::string_view text) const;
  DedupOptions options_;
  HashSet64 paragraphs_;
  HashSet64 shingles_;
};

}  // namespace cca::data
