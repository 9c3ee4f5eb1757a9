#include "data/gcide.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "data/text_source.h"
#include "util/error.h"
#include "util/format.h"
#include "util/json.h"

namespace cca::data {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// "[1913 Webster]", "[WordNet 1.5 +PJC]": where a sense came from, not part of the text.
bool is_source_tag(std::string_view line) {
  if (line.size() < 3 || line.front() != '[' || line.back() != ']') return false;
  const std::string_view inside = line.substr(1, line.size() - 2);
  for (const char* word : {"Webster", "WordNet", "PJC", "Century Dict"}) {
    if (inside.find(word) != std::string_view::npos) return true;
  }
  return inside == "AS" || inside == "RDH" || inside == "break";
}

// GCIDE's ASCII accent notation, e.g. "['e]" for é. Only forms that are unambiguous; anything
// else is kept as written.
struct Accent {
  const char* notation;
  const char* utf8;
};
constexpr Accent kAccents[] = {
    {"['a]", "\xC3\xA1"},  {"['e]", "\xC3\xA9"},  {"['i]", "\xC3\xAD"},  {"['o]", "\xC3\xB3"},
    {"['u]", "\xC3\xBA"},  {"[`a]", "\xC3\xA0"},  {"[`e]", "\xC3\xA8"},  {"[`o]", "\xC3\xB2"},
    {"[^a]", "\xC3\xA2"},  {"[^e]", "\xC3\xAA"},  {"[^i]", "\xC3\xAE"},  {"[^o]", "\xC3\xB4"},
    {"[^u]", "\xC3\xBB"},  {"[\"a]", "\xC3\xA4"}, {"[\"e]", "\xC3\xAB"}, {"[\"i]", "\xC3\xAF"},
    {"[\"o]", "\xC3\xB6"}, {"[\"u]", "\xC3\xBC"}, {"[~n]", "\xC3\xB1"},  {"[,c]", "\xC3\xA7"},
    {"[ae]", "\xC3\xA6"},  {"[AE]", "\xC3\x86"},  {"[oe]", "\xC5\x93"},  {"[OE]", "\xC5\x92"},
    {"[deg]", "\xC2\xB0"},
};

// Removes pronunciations (" \...\"), braces and accent notation, and collapses spaces.
std::string clean_paragraph(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\\') {
      const size_t close = text.find('\\', i + 1);
      if (close != std::string_view::npos) {
        while (!out.empty() && out.back() == ' ') out.pop_back();
        i = close + 1;
        continue;
      }
    }
    if (c == '{' || c == '}') {
      ++i;
      continue;
    }
    if (c == '[') {
      bool mapped = false;
      for (const Accent& a : kAccents) {
        const size_t n = std::strlen(a.notation);
        if (text.compare(i, n, a.notation) == 0) {
          out += a.utf8;
          i += n;
          mapped = true;
          break;
        }
      }
      if (mapped) continue;
    }
    // A lone "?" stands for a Greek or Hebrew word the source could not represent.
    if (c == '?' && (out.empty() || out.back() == ' ') &&
        (i + 1 == text.size() || std::strchr(" ,.;:])", text[i + 1]) != nullptr)) {
      ++i;
      continue;
    }
    if (c == ' ' && (out.empty() || out.back() == ' ')) {
      ++i;
      continue;
    }
    out += c;
    ++i;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

uint64_t decode_dictd_number(std::string_view text) {
  static const std::string_view alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  if (text.empty() || text.size() > 10) {
    throw Error(format("\"{}\" is not a dictd number", std::string(text.substr(0, 20))));
  }
  uint64_t value = 0;
  for (char c : text) {
    const size_t digit = alphabet.find(c);
    if (digit == std::string_view::npos) {
      throw Error(format("\"{}\" is not a dictd number", std::string(text)));
    }
    value = value * 64 + digit;
  }
  return value;
}

std::vector<DictRange> read_dictd_index(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(format("{}: cannot open: {}", path, std::strerror(errno)));
  std::vector<DictRange> ranges;
  std::string line;
  int64_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    const size_t tab1 = line.find('\t');
    const size_t tab2 = tab1 == std::string::npos ? tab1 : line.find('\t', tab1 + 1);
    if (tab2 == std::string::npos) {
      throw Error(format("{}:{}: expected \"word<TAB>offset<TAB>length\"", path, number));
    }
    // Database metadata, not entries: "00-database-info", or "00databaseinfo" in older dictfmt.
    if (line.compare(0, 3, "00-") == 0 || line.compare(0, 10, "00database") == 0) continue;
    const size_t tab3 = line.find('\t', tab2 + 1);
    try {
      const uint64_t offset =
          decode_dictd_number(std::string_view(line).substr(tab1 + 1, tab2 - tab1 - 1));
      const uint64_t length = decode_dictd_number(std::string_view(line).substr(
          tab2 + 1, tab3 == std::string::npos ? std::string::npos : tab3 - tab2 - 1));
      ranges.push_back({offset, length});
    } catch (const Error& e) {
      throw Error(format("{}:{}: {}", path, number, e.what()));
    }
  }
  std::sort(ranges.begin(), ranges.end(), [](const DictRange& a, const DictRange& b) {
    return a.offset != b.offset ? a.offset < b.offset : a.length < b.length;
  });
  ranges.erase(std::unique(ranges.begin(), ranges.end(),
                           [](const DictRange& a, const DictRange& b) {
                             return a.offset == b.offset && a.length == b.length;
                           }),
               ranges.end());
  if (ranges.empty()) throw Error(format("{}: no dictionary entries", path));
  return ranges;
}

std::string read_gzip_file(const std::string& path) {
  errno = 0;
  gzFile gz = gzopen(path.c_str(), "rb");
  if (gz == nullptr) {
    throw Error(format("{}: cannot open: {}", path, errno ? std::strerror(errno) : "zlib error"));
  }
  std::string out;
  std::string block(1 << 20, '\0');
  int got;
  while ((got = gzread(gz, block.data(), static_cast<unsigned>(block.size()))) > 0) {
    out.append(block.data(), static_cast<size_t>(got));
  }
  int code = 0;
  const std::string message = got < 0 ? gzerror(gz, &code) : "";
  gzclose(gz);
  if (got < 0) throw Error(format("{}: cannot decompress: {}", path, message));
  return out;
}

std::string clean_gcide_entry(std::string_view raw) {
  std::string out;
  std::string paragraph;
  auto flush = [&] {
    const std::string text = clean_paragraph(paragraph);
    if (!text.empty()) {
      if (!out.empty()) out += '\n';
      out += text;
    }
    paragraph.clear();
  };
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t end = raw.find('\n', pos);
    if (end == std::string_view::npos) end = raw.size();
    const std::string_view line = trim(raw.substr(pos, end - pos));
    pos = end + 1;
    if (line.empty()) {
      flush();
      continue;
    }
    if (is_source_tag(line)) continue;
    if (!paragraph.empty()) paragraph += ' ';
    paragraph.append(line.data(), line.size());
  }
  flush();
  return out;
}

GcideStats write_gcide_jsonl(const std::string& dict_path, const std::string& index_path,
                             const std::string& jsonl_path) {
  const std::vector<DictRange> ranges = read_dictd_index(index_path);
  const std::string dict = read_gzip_file(dict_path);
  std::ofstream out(jsonl_path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error(format("{}: cannot create: {}", jsonl_path, std::strerror(errno)));
  GcideStats stats;
  std::string line;
  for (const DictRange& r : ranges) {
    ++stats.entries;
    if (r.offset > dict.size() || r.length > dict.size() - r.offset) {
      throw Error(format("{}: entry at offset {} (+{}) lies outside {} ({} bytes)", index_path,
                         r.offset, r.length, dict_path, dict.size()));
    }
    const std::string_view raw(dict.data() + r.offset, r.length);
    if (find_invalid_utf8(raw) != std::string_view::npos) {
      ++stats.skipped_invalid;  // a few entries carry stray Windows-1252 bytes
      continue;
    }
    const std::string text = clean_gcide_entry(raw);
    if (text.empty()) continue;
    line.clear();
    line += "{\"text\":";
    append_json_string(line, text);
    line += "}\n";
    out << line;
    ++stats.documents;
    stats.bytes += static_cast<int64_t>(text.size());
  }
  out.flush();
  if (!out) throw Error(format("{}: write failed", jsonl_path));
  return stats;
}

}  // namespace cca::data
