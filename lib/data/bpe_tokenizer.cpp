#include "data/bpe_tokenizer.h"

#include <algorithm>
#include <queue>

#include "data/bpe_tables.h"
#include "data/tokenizer.h"
#include "data/unicode_regex.h"
#include "data/unicode_text.h"
#include "util/error.h"
#include "util/format.h"

namespace cca::data {

// Pieces longer than this are encoded without the cache (long runs of digits or spaces would
// otherwise fill it with one-off entries).
constexpr size_t kMaxCachedPiece = 256;

struct BpeTokenizer::Step {
  PreTokenizerStep spec;
  std::unique_ptr<UnicodeRegex> regex;  // null for a ByteLevel step without use_regex
};

namespace {

using Span = std::pair<size_t, size_t>;

// Applies a Split behavior to the matches of `regex` in `text`, as `tokenizers` does: the text is
// cut into alternating matched and unmatched spans, which are then kept, dropped or joined.
std::vector<Span> split_spans(const UnicodeRegex& regex, std::string_view text,
                              SplitBehavior behavior, bool invert) {
  std::vector<std::pair<Span, bool>> parts;  // (span, is a match)
  size_t previous = 0;
  regex.for_each_match(text, [&](size_t start, size_t end) {
    if (previous != start) parts.push_back({{previous, start}, invert});
    parts.push_back({{start, end}, !invert});
    previous = end;
  });
  if (previous != text.size()) parts.push_back({{previous, text.size()}, invert});

  std::vector<Span> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::isolated:
      for (const auto& [span, match] : parts) out.push_back(span);
      break;
    case SplitBehavior::removed:
      for (const auto& [span, match] : parts) {
        if (!match) out.push_back(span);
      }
      break;
    case SplitBehavior::contiguous:
      for (const auto& [span, match] : parts) {
        if (!out.empty() && match == previous_match) {
          out.back().second = span.second;
        } else {
          out.push_back(span);
        }
        previous_match = match;
      }
      break;
    case SplitBehavior::merged_with_previous:
      for (const auto& [span, match] : parts) {
        if (!out.empty() && match && !previous_match) {
          out.back().second = span.second;
        } else {
          out.push_back(span);
        }
        previous_match = match;
      }
      break;
    case SplitBehavior::merged_with_next:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (!out.empty() && it->second && !previous_match) {
          out.back().first = it->first.first;
        } else {
          out.push_back(it->first);
        }
        previous_match = it->second;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  return out;
}

}  // namespace

BpeTokenizer::BpeTokenizer(const std::string& text, const std::string& path)
    : path_(path), config_(parse_bpe_config(text, path)) {
  try {
    build_tables();
  } catch (const Error& e) {
    throw Error(format("{}: {}", path, e.what()));
  }
}

BpeTokenizer::~BpeTokenizer() = default;

void BpeTokenizer::build_tables() {
  const ByteLevelAlphabet& alphabet = byte_level_alphabet();
  int32_t max_id = -1;
  for (const auto& [token, id] : config_.vocab) max_id = std::max(max_id, id);
  for (const BpeAddedToken& t : config_.added_tokens) max_id = std::max(max_id, t.id);
  id_tokens_.assign(static_cast<size_t>(max_id) + 1, {});
  id_bytes_.assign(id_tokens_.size(), {});
  id_known_.assign(id_tokens_.size(), 0);
  vocab_.reserve(config_.vocab.size());
  for (const auto& [token, id] : config_.vocab) {
    if (id_known_[id]) {
      throw Error(
          format("model.vocab gives id {} to both \"{}\" and \"{}\"", id, id_tokens_[id], token));
    }
    id_known_[id] = 1;
    id_tokens_[id] = token;
    id_bytes_[id] = alphabet.decode(token);
    vocab_.emplace(token, id);
  }
  for (size_t b = 0; b < 256; ++b) {
    const auto it = vocab_.find(alphabet.chars[b]);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }
  if (!config_.unk_token.empty()) {
    const auto it = vocab_.find(config_.unk_token);
    if (it == vocab_.end()) {
      throw Error(format("model.unk_token \"{}\" is not in model.vocab", config_.unk_token));
    }
    unk_id_ = it->second;
  }
  merges_ = std::make_unique<MergeTable>(config_.merges, vocab_);

  std::vector<AddedTokenMatcher::Entry> raw, normalized;
  for (const BpeAddedToken& t : config_.added_tokens) {
    // `tokenizers` matches and decodes a normalized token by its normalized form.
    std::string form = t.content;
    if (t.normalized) {
      for (UnicodeForm f : config_.normalizers) form = unicode_normalize(form, f);
    }
    id_known_[t.id] = 1;
    id_tokens_[t.id] = t.content;
    id_bytes_[t.id] = alphabet.decode(form);
    (t.normalized ? normalized : raw).push_back({form, &t});
  }
  raw_tokens_ = std::make_unique<AddedTokenMatcher>(std::move(raw));
  normalized_tokens_ = std::make_unique<AddedTokenMatcher>(std::move(normalized));

  for (const PreTokenizerStep& spec : config_.pre_tokenizer) {
    Step step{spec, nullptr};
    if (!spec.pattern.empty()) step.regex = std::make_unique<UnicodeRegex>(spec.pattern, path_);
    steps_.push_back(std::move(step));
  }
}

void BpeTokenizer::encode(std::string_view text, std::vector<int32_t>& out,
                          EncodeCache& cache) const {
  const size_t bad = invalid_utf8_offset(text);
  if (bad != text.size()) {
    throw Error(format("{}: cannot encode text with invalid UTF-8 (at byte {})", path_, bad));
  }
  raw_tokens_->split(text, [&](std::string_view piece, int32_t id) {
    if (id >= 0) {
      out.push_back(id);
    } else {
      encode_segment(piece, out, cache);
    }
  });
}

void BpeTokenizer::encode_segment(std::string_view text, std::vector<int32_t>& out,
                                  EncodeCache& cache) const {
  std::string normalized;
  if (!config_.normalizers.empty()) {
    normalized = text;
    for (UnicodeForm form : config_.normalizers) normalized = unicode_normalize(normalized, form);
    text = normalized;
  }
  normalized_tokens_->split(text, [&](std::string_view piece, int32_t id) {
    if (id >= 0) {
      out.push_back(id);
    } else {
      pre_tokenize(piece, 0, out, cache);
    }
  });
}

void BpeTokenizer::pre_tokenize(std::string_view text, size_t step, std::vector<int32_t>& out,
                                EncodeCache& cache) const {
  if (text.empty()) return;
  const Step& s = steps_[step];
  if (s.spec.kind == PreTokenizerStep::Kind::byte_level) {
    std::string prefixed;
    if (s.spec.add_prefix_space && text.front() != ' ') {
      prefixed.reserve(text.size() + 1);
      prefixed.append(1, ' ').append(text);
      text = prefixed;
    }
    if (!s.regex) return encode_word(text, out, cache);
    // Isolated: every match and every gap between matches is a piece.
    size_t previous = 0;
    s.regex->for_each_match(text, [&](size_t start, size_t end) {
      if (previous != start) encode_word(text.substr(previous, start - previous), out, cache);
      if (end != start) encode_word(text.substr(start, end - start), out, cache);
      previous = end;
    });
    if (previous != text.size()) encode_word(text.substr(previous), out, cache);
    return;
  }
  for (const Span& span : split_spans(*s.regex, text, s.spec.behavior, s.spec.invert)) {
    if (span.second > span.first) {
      pre_tokenize(text.substr(span.first, span.second - span.first), step + 1, out, cache);
    }
  }
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out,
                               EncodeCache& cache) const {
  if (word.size() > kMaxCachedPiece) return merge_word(word, out);
  std::string key(word);
  auto it = cache.map_.find(key);
  if (it == cache.map_.end()) {
    if (cache.map_.size() >= cache.max_entries_) cache.map_.clear();
    std::vector<int32_t> ids;
    merge_word(word, ids);
    it = cache.map_.emplace(std::move(key), std::move(ids)).first;
  }
  out.insert(out.end(), it->second.begin(), it->second.end());
}

void BpeTokenizer::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  if (config_.ignore_merges) {
    const auto it = vocab_.find(byte_level_alphabet().encode(word));
    if (it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  }
  std::vector<int32_t> symbols;
  symbols.reserve(word.size());
  bool previous_unknown = false;
  for (const char c : word) {
    const int32_t id = byte_ids_[static_cast<unsigned char>(c)];
    if (id >= 0) {
      symbols.push_back(id);
      previous_unknown = false;
    } else if (unk_id_ >= 0) {
      // Unknown bytes become the unknown token; with fuse_unk a run of them becomes one.
      if (!(config_.fuse_unk && previous_unknown)) symbols.push_back(unk_id_);
      previous_unknown = true;
    }
  }
  merges_->apply(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (id < 0 || id >= vocab_size() || !id_known_[id]) {
      throw Error(format("{}: cannot decode token id {} (vocabulary size {}{})", path_, id,
                         vocab_size(),
                         id >= 0 && id < vocab_size() ? ", and no token has this id" : ""));
    }
    bytes += id_bytes_[id];
  }
  return utf8_lossy(bytes);
}

std::string BpeTokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size() || !id_known_[id]) return format("<invalid id {}>", id);
  return id_tokens_[id];
}

}  // namespace cca::data
