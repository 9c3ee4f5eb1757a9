#include "data/dedup.h"

#include "util/hash.h"

namespace cca::data {
namespace {

// 0 marks an empty slot, so a hash of 0 is stored as 1 (a one in 2^64 merge).
uint64_t nonzero(uint64_t hash) {
  return hash == 0 ? 1 : hash;
}

}  // namespace

std::string normalize_for_dedup(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char raw : text) {
    const auto c = static_cast<unsigned char>(raw);
    const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80;
    if (c >= 'A' && c <= 'Z') {
      if (space && !out.empty()) out += ' ';
      space = false;
      out += static_cast<char>(c - 'A' + 'a');
    } else if (keep) {
      if (space && !out.empty()) out += ' ';
      space = false;
      out += static_cast<char>(c);
    } else {
      space = true;
    }
  }
  return out;
}

std::vector<uint64_t> shingle_hashes(std::string_view normalized, int words) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < normalized.size(); ++i) {
    if (i == 0 || normalized[i - 1] == ' ') starts.push_back(i);
  }
  std::vector<uint64_t> hashes;
  const size_t n = static_cast<size_t>(words);
  for (size_t w = 0; w + n <= starts.size(); ++w) {
    const size_t end = w + n < starts.size() ? starts[w + n] - 1 : normalized.size();
    hashes.push_back(xxh64(normalized.substr(starts[w], end - starts[w])));
  }
  return hashes;
}

bool HashSet64::insert(uint64_t hash) {
  hash = nonzero(hash);
  if ((count_ + 1) * 2 > slots_.size()) grow();
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    if (slots_[i] == hash) return false;
    if (slots_[i] == 0) {
      slots_[i] = hash;
      ++count_;
      return true;
    }
  }
}

bool HashSet64::contains(uint64_t hash) const {
  if (slots_.empty()) return false;
  hash = nonzero(hash);
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    if (slots_[i] == hash) return true;
    if (slots_[i] == 0) return false;
  }
}

void HashSet64::grow() {
  std::vector<uint64_t> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, 0);
  count_ = 0;
  for (uint64_t h : old) {
    if (h != 0) insert(h);
  }
}

std::vector<uint64_t> Deduplicator::sampled_shingles(std::string_view text) const {
  std::vector<uint64_t> kept;
  for (uint64_t h : shingle_hashes(normalize_for_dedup(text), options_.shingle_words)) {
    if (h % options_.shingle_sample == 0) kept.push_back(h);
  }
  return kept;
}

bool Deduplicator::filter(std::string& text, DedupCounts& counts) {
  const std::vector<uint64_t> shingles = sampled_shingles(text);
  size_t seen = 0;
  for (uint64_t h : shingles) seen += shingles_.contains(h) ? 1 : 0;
  if (!shingles.empty() &&
      static_cast<double>(seen) >= options_.near_duplicate_share * shingles.size()) {
    ++counts.near_duplicates;
    counts.bytes_removed += static_cast<int64_t>(text.size());
    return false;
  }
  std::string kept;
  kept.reserve(text.size());
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line = std::string_view(text).substr(pos, end - pos);
    pos = end + 1;
    const std::string norm = normalize_for_dedup(line);
    if (norm.size() >= options_.min_paragraph_chars && !paragraphs_.insert(xxh64(norm))) {
      ++counts.paragraphs_removed;
      counts.bytes_removed += static_cast<int64_t>(line.size()) + 1;
      continue;
    }
    if (!kept.empty()) kept += '\n';
    kept.append(line.data(), line.size());
  }
  if (kept.empty()) {
    ++counts.documents_removed;
    text.clear();
    return false;
  }
  for (uint64_t h : shingles) shingles_.insert(h);
  text = std::move(kept);
  return true;
}

}  // namespace cca::data
