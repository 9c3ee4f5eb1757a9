#include "data/sword.h"

#include <zlib.h>

#include <cstring>
#include <set>
#include <tuple>

#include "data/corpus_text.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace cca::data {
namespace {

uint32_t read_u32(std::string_view bytes, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

uint32_t read_u16(std::string_view bytes, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
  return uint32_t{p[0]} | uint32_t{p[1]} << 8;
}

std::string_view tag_name(std::string_view tag) {
  size_t start = 1;
  if (start < tag.size() && tag[start] == '/') ++start;
  size_t end = start;
  while (end < tag.size() && std::strchr(" \t\n/>", tag[end]) == nullptr) ++end;
  return tag.substr(start, end - start);
}

bool has_attribute(std::string_view tag, std::string_view attribute) {
  return tag.find(attribute) != std::string_view::npos;
}

// What a tag leaves in the text: a chapter start cuts the document, structural tags
// break the line, inline ones (<w>, <hi>, <transChange>...) leave nothing.
const char* tag_replacement(std::string_view tag) {
  const std::string_view name = tag_name(tag);
  const bool start = has_attribute(tag, "sID=");
  if (name == "chapter") return start ? "\f" : "\n";
  for (const char* block : {"p", "lb", "l", "lg", "title", "div", "item", "list", "head", "br"}) {
    if (name == block) return "\n";
  }
  if (name == "milestone" && has_attribute(tag, "type=\"x-p\"")) return "\n";
  return "";
}

// Entries inflate from blocks; an index pointing outside them is a corrupt module.
void check_entries(const std::vector<SwordEntry>& entries, const std::vector<SwordBlock>& blocks,
                   int record_bytes, const std::string& what) {
  for (size_t i = 0; i < entries.size(); ++i) {
    const SwordEntry& e = entries[i];
    if (e.size == 0) continue;
    if (e.block >= blocks.size() ||
        uint64_t{e.offset} + e.size > blocks[e.block].uncompressed_size) {
      throw Error(format("{}: entry {} ({}-byte records) points outside the {} blocks", what, i,
                         record_bytes, blocks.size()));
    }
  }
}

// The entry index of one testament: 12-byte records when they fit the blocks, else 10-byte.
std::vector<SwordEntry> read_entries(const std::string& path,
                                     const std::vector<SwordBlock>& blocks) {
  const std::string bytes = files::read_file(path, "SWORD entry index");
  std::string first_error;
  for (int record : {12, 10}) {
    if (bytes.size() % static_cast<size_t>(record) != 0) continue;
    try {
      std::vector<SwordEntry> entries = parse_sword_entry_index(bytes, record, path);
      check_entries(entries, blocks, record, path);
      return entries;
    } catch (const Error& e) {
      if (first_error.empty()) first_error = e.what();
    }
  }
  throw Error(first_error.empty()
                  ? format("{}: {} bytes is neither a whole number of 10- nor 12-byte records",
                           path, bytes.size())
                  : first_error);
}

// "ot.bzs" -> the prefix "ot.b" when the three files of a testament are there.
std::string find_testament(const std::string& dir, const char* testament) {
  for (const char* kind : {"b", "c", "v"}) {
    const std::string prefix = files::join(dir, std::string(testament) + "." + kind);
    if (files::is_regular_file(prefix + "zs") && files::is_regular_file(prefix + "zz") &&
        files::is_regular_file(prefix + "zv")) {
      return prefix;
    }
  }
  return "";
}

// The KJV marks paragraphs with a pilcrow; the line break already says it.
void drop_pilcrows(std::string& text) {
  static const std::string kMark = "\xC2\xB6 ";  // "¶ "
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    if (text.compare(pos, kMark.size(), kMark) == 0 && (pos == 0 || text[pos - 1] == '\n')) {
      pos += kMark.size();
      continue;
    }
    out += text[pos++];
  }
  text = std::move(out);
}

void append_documents(const std::string& text, const std::string& origin,
                      std::vector<Document>& out) {
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\f', start);
    if (end == std::string::npos) end = text.size();
    std::string doc = tidy_lines(std::string_view(text).substr(start, end - start));
    drop_pilcrows(doc);
    if (!doc.empty()) out.push_back({std::move(doc), format("{} #{}", origin, out.size())});
    start = end + 1;
  }
}

}  // namespace

std::vector<SwordBlock> parse_sword_block_index(std::string_view bytes, const std::string& what) {
  if (bytes.size() % 12 != 0) {
    throw Error(
        format("{}: {} bytes is not a whole number of 12-byte block records", what, bytes.size()));
  }
  std::vector<SwordBlock> blocks;
  for (size_t at = 0; at < bytes.size(); at += 12) {
    blocks.push_back({read_u32(bytes, at), read_u32(bytes, at + 4), read_u32(bytes, at + 8)});
  }
  return blocks;
}

std::vector<SwordEntry> parse_sword_entry_index(std::string_view bytes, int record_bytes,
                                                const std::string& what) {
  if ((record_bytes != 10 && record_bytes != 12) ||
      bytes.size() % static_cast<size_t>(record_bytes) != 0) {
    throw Error(format("{}: {} bytes is not a whole number of {}-byte entry records", what,
                       bytes.size(), record_bytes));
  }
  std::vector<SwordEntry> entries;
  for (size_t at = 0; at < bytes.size(); at += static_cast<size_t>(record_bytes)) {
    const uint32_t size = record_bytes == 12 ? read_u32(bytes, at + 8) : read_u16(bytes, at + 8);
    entries.push_back({read_u32(bytes, at), read_u32(bytes, at + 4), size});
  }
  return entries;
}

std::vector<std::string> inflate_sword_blocks(std::string_view data,
                                              const std::vector<SwordBlock>& blocks,
                                              const std::string& what) {
  std::vector<std::string> out;
  out.reserve(blocks.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    const SwordBlock& b = blocks[i];
    if (uint64_t{b.offset} + b.compressed_size > data.size()) {
      throw Error(format("{}: block {} ({} bytes at {}) lies past the end ({} bytes)", what, i,
                         b.compressed_size, b.offset, data.size()));
    }
    std::string text(b.uncompressed_size, '\0');
    uLongf size = b.uncompressed_size;
    const int rc =
        uncompress(reinterpret_cast<Bytef*>(text.data()), &size,
                   reinterpret_cast<const Bytef*>(data.data() + b.offset), b.compressed_size);
    if (rc != Z_OK || size != b.uncompressed_size) {
      throw Error(format("{}: block {} does not inflate to its recorded {} bytes (zlib code {})",
                         what, i, b.uncompressed_size, rc));
    }
    out.push_back(std::move(text));
  }
  return out;
}

std::string strip_osis(std::string_view osis) {
  std::string out;
  out.reserve(osis.size());
  int note_depth = 0;  // inside <note>...</note>: footnotes and cross references, not text
  size_t i = 0;
  while (i < osis.size()) {
    if (osis[i] == '<') {
      const size_t close = osis.find('>', i);
      if (close == std::string_view::npos) break;  // a cut tag at the end: drop it
      const std::string_view tag = osis.substr(i, close - i + 1);
      i = close + 1;
      const bool self_closing = tag.size() >= 2 && tag[tag.size() - 2] == '/';
      if (tag_name(tag) == "note" && !self_closing) {
        note_depth += tag[1] == '/' ? -1 : 1;
        if (note_depth < 0) note_depth = 0;
        continue;
      }
      if (note_depth == 0) out += tag_replacement(tag);
      continue;
    }
    if (note_depth > 0) {
      ++i;
      continue;
    }
    i += append_xml_char(osis, i, out);
  }
  return out;
}

std::vector<Document> read_sword_module(const std::string& dir, SwordStats* stats) {
  SwordStats local;
  std::vector<Document> docs;
  bool found = false;
  for (const char* testament : {"ot", "nt"}) {
    const std::string prefix = find_testament(dir, testament);
    if (prefix.empty()) continue;
    found = true;
    const std::vector<SwordBlock> blocks = parse_sword_block_index(
        files::read_file(prefix + "zs", "SWORD block index"), prefix + "zs");
    const std::vector<std::string> text =
        inflate_sword_blocks(files::read_file(prefix + "zz", "SWORD text"), blocks, prefix + "zz");
    std::set<std::tuple<uint32_t, uint32_t, uint32_t>> seen;
    std::string joined;
    for (const SwordEntry& e : read_entries(prefix + "zv", blocks)) {
      if (e.size == 0) continue;
      if (!seen.insert({e.block, e.offset, e.size}).second) {
        ++local.duplicates;
        continue;
      }
      ++local.entries;
      joined += strip_osis(std::string_view(text[e.block]).substr(e.offset, e.size));
      joined += ' ';
    }
    append_documents(joined, prefix + "zz", docs);
  }
  if (!found) {
    throw Error(
        format("{}: no SWORD module here (expected ot.bzs/.bzz/.bzv or nt.*, or the "
               "c/v variants)",
               dir));
  }
  if (stats != nullptr) *stats = local;
  return docs;
}

}  // namespace cca::data
