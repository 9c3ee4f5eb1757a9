#include "data/dictd_text.h"

#include <cctype>

#include "data/corpus_text.h"
#include "data/gcide.h"
#include "util/error.h"
#include "util/format.h"

namespace cca::data {
namespace {

// At `at`, "[syn: ...]"-style label lists: returns the index past "]" or `at` when not one.
size_t skip_label_list(std::string_view text, size_t at) {
  size_t i = at + 1;
  while (i < text.size() && std::islower(static_cast<unsigned char>(text[i]))) ++i;
  if (i == at + 1 || i >= text.size() || text[i] != ':') return at;
  const size_t close = text.find(']', i);
  return close == std::string_view::npos ? at : close + 1;
}

// "n 1: ...", "adj 2: ...", "3: ...": a WordNet sense starts a paragraph.
bool starts_sense(std::string_view line) {
  size_t i = 0;
  while (i < line.size() && line[i] == ' ') ++i;
  size_t word = i;
  while (word < line.size() && std::islower(static_cast<unsigned char>(line[word]))) ++word;
  if (word > i && word < line.size() && line[word] == ' ') i = word + 1;
  const size_t digits = i;
  while (i < line.size() && std::isdigit(static_cast<unsigned char>(line[i]))) ++i;
  return i > digits && i < line.size() && line[i] == ':';
}

}  // namespace

std::string clean_dictd_entry(std::string_view raw) {
  std::string text;
  text.reserve(raw.size());
  for (size_t i = 0; i < raw.size();) {
    const char c = raw[i];
    if (c == '[') {
      const size_t past = skip_label_list(raw, i);
      if (past != i) {
        i = past;
        continue;
      }
    }
    if (c != '{' && c != '}') text += c == '\t' ? ' ' : c;
    ++i;
  }
  // A blank line before each sense keeps senses apart when the text is unwrapped.
  std::string spaced;
  spaced.reserve(text.size() + 64);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line = std::string_view(text).substr(pos, end - pos);
    if (starts_sense(line)) spaced += '\n';
    spaced.append(line.data(), line.size());
    spaced += '\n';
    pos = end + 1;
  }
  return unwrap_paragraphs(spaced);
}

std::vector<Document> read_dictd_documents(const std::string& dict_path,
                                           const std::string& index_path, DictdStats* stats) {
  const std::vector<DictRange> ranges = read_dictd_index(index_path);
  const std::string dict = read_gzip_file(dict_path);
  DictdStats local;
  std::vector<Document> docs;
  for (const DictRange& r : ranges) {
    ++local.entries;
    if (r.offset > dict.size() || r.length > dict.size() - r.offset) {
      throw Error(format("{}: entry at offset {} (+{}) lies outside {} ({} bytes)", index_path,
                         r.offset, r.length, dict_path, dict.size()));
    }
    const std::string_view raw(dict.data() + r.offset, r.length);
    if (find_invalid_utf8(raw) != std::string_view::npos) {
      ++local.skipped_invalid;
      continue;
    }
    std::string text = clean_dictd_entry(raw);
    if (!text.empty()) docs.push_back({std::move(text), format("{}@{}", dict_path, r.offset)});
  }
  if (stats != nullptr) *stats = local;
  return docs;
}

}  // namespace cca::data
