#include "data/bpe_tables.h"

#include <algorithm>
#include <queue>

#include "data/unicode_text.h"
#include "util/error.h"
#include "util/format.h"
#include "util/strings.h"

namespace cca::data {

namespace {

bool stands_for_itself(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

}  // namespace

ByteLevelAlphabet::ByteLevelAlphabet() {
  byte_of.fill(-1);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const int cp = stands_for_itself(b) ? b : next++;
    append_utf8(chars[b], static_cast<uint32_t>(cp));
    byte_of[cp] = static_cast<int16_t>(b);
  }
}

std::string ByteLevelAlphabet::encode(std::string_view bytes) const {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) out += chars[static_cast<unsigned char>(c)];
  return out;
}

std::string ByteLevelAlphabet::decode(std::string_view token) const {
  std::string out;
  const auto* s = reinterpret_cast<const unsigned char*>(token.data());
  for (size_t i = 0; i < token.size();) {
    uint32_t cp = s[i];
    size_t n = 1;
    if (cp >= 0xC0 && cp < 0xE0 && i + 1 < token.size()) {
      cp = ((cp & 0x1F) << 6) | (s[i + 1] & 0x3F);
      n = 2;
    } else if (cp >= 0x80) {
      return std::string(token);  // beyond U+07FF or not UTF-8: not in the alphabet
    }
    if (cp >= byte_of.size() || byte_of[cp] < 0) return std::string(token);
    out += static_cast<char>(byte_of[cp]);
    i += n;
  }
  return out;
}

const ByteLevelAlphabet& byte_level_alphabet() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

MergeTable::MergeTable(const std::vector<std::pair<std::string, std::string>>& merges,
                       const std::unordered_map<std::string, int32_t>& vocab) {
  size_t capacity = 16;
  while (capacity < merges.size() * 2) capacity *= 2;
  slots_.resize(capacity);
  shift_ = 64 - __builtin_ctzll(capacity);
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    const auto id_of = [&](const std::string& token, const char* what) {
      const auto it = vocab.find(token);
      if (it == vocab.end()) {
        throw Error(
            format("model.merges[{}] (\"{}\" + \"{}\"): its {} \"{}\" is not in "
                   "model.vocab",
                   rank, left, right, what, token));
      }
      return it->second;
    };
    insert(id_of(left, "left part"), id_of(right, "right part"), static_cast<int32_t>(rank),
           id_of(left + right, "result"));
  }
}

const MergeTable::Slot* MergeTable::find(int32_t left, int32_t right) const {
  const uint64_t k = key(left, right);
  const size_t mask = slots_.size() - 1;
  for (size_t i = home(k);; i = (i + 1) & mask) {
    if (slots_[i].key == k) return &slots_[i];
    if (slots_[i].key == kEmpty) return nullptr;
  }
}

void MergeTable::insert(int32_t left, int32_t right, int32_t rank, int32_t result) {
  const uint64_t k = key(left, right);
  const size_t mask = slots_.size() - 1;
  size_t i = home(k);
  while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & mask;
  slots_[i] = {k, rank, result};
}

void MergeTable::apply(std::vector<int32_t>& symbols) const {
  if (symbols.size() < 2) return;
  // A doubly linked list over the symbols; a merge keeps the left one and unlinks the right.
  const auto n = static_cast<int32_t>(symbols.size());
  std::vector<int32_t> prev(symbols.size()), next(symbols.size());
  for (int32_t i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank, left, right, left_id, right_id, result;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : left > o.left;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto consider = [&](int32_t left) {
    const int32_t right = left >= 0 ? next[left] : -1;
    if (right < 0) return;
    if (const Slot* s = find(symbols[left], symbols[right])) {
      queue.push({s->rank, left, right, symbols[left], symbols[right], s->result});
    }
  };
  for (int32_t i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    // Stale when either side has merged since the candidate was queued.
    if (next[c.left] != c.right || symbols[c.left] != c.left_id || symbols[c.right] != c.right_id) {
      continue;
    }
    symbols[c.left] = c.result;
    symbols[c.right] = -1;
    next[c.left] = next[c.right];
    if (next[c.left] >= 0) prev[next[c.left]] = c.left;
    consider(prev[c.left]);
    consider(c.left);
  }
  symbols.erase(std::remove(symbols.begin(), symbols.end(), -1), symbols.end());
}

AddedTokenMatcher::AddedTokenMatcher(std::vector<Entry> entries) : entries_(std::move(entries)) {
  for (const Entry& e : entries_) {
    if (!e.form.empty()) by_first_byte_[static_cast<unsigned char>(e.form[0])].push_back(&e);
  }
  for (auto& bucket : by_first_byte_) {
    std::stable_sort(bucket.begin(), bucket.end(), [](const Entry* a, const Entry* b) {
      return a->form.size() > b->form.size();
    });
  }
}

bool AddedTokenMatcher::find(std::string_view text, size_t from, size_t& start,
                             const Entry*& found) const {
  for (size_t i = from; i < text.size(); ++i) {
    for (const Entry* e : by_first_byte_[static_cast<unsigned char>(text[i])]) {
      if (text.compare(i, e->form.size(), e->form) == 0) {
        start = i;
        found = e;
        return true;
      }
    }
  }
  return false;
}

void AddedTokenMatcher::split(
    std::string_view text, const std::function<void(std::string_view, int32_t)>& on_piece) const {
  size_t done = 0;  // text before this is handed out
  size_t search = 0;
  size_t start = 0;
  const Entry* e = nullptr;
  while (!entries_.empty() && find(text, search, start, e)) {
    size_t stop = start + e->form.size();
    search = stop;
    const BpeAddedToken& t = *e->token;
    if (t.single_word && ((start > 0 && text_ends_with_word_char(text.substr(0, start))) ||
                          (stop < text.size() && text_starts_with_word_char(text.substr(stop))))) {
      continue;  // inside a word
    }
    if (t.lstrip) start = std::max(trailing_white_space_start(text.substr(0, start)), done);
    if (t.rstrip) stop += leading_white_space(text.substr(stop));
    if (done < start) on_piece(text.substr(done, start - done), -1);
    on_piece(text.substr(start, stop - start), t.id);
    done = stop;
  }
  if (done < text.size()) on_piece(text.substr(done), -1);
}

}  // namespace cca::data
