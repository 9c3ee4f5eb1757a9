// SWORD Bible and commentary modules (zText, zCom, zCom4) read without libsword, as Debian's
// sword-text-* and sword-comm-* packages install them. A module folder holds, per testament
// ("ot", "nt"), three files: *.?zs, the block index (12-byte records: offset and compressed size
// in *.?zz, uncompressed size); *.?zz, zlib-compressed blocks; *.?zv, the entry index (block
// number, offset in the uncompressed block, size: 10-byte records with a 16-bit size, 12-byte ones
// with a 32-bit size). Entries carry OSIS markup, stripped here to plain paragraphs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/text_source.h"

namespace cca::data {

struct SwordBlock {
  uint32_t offset = 0;             // in the .?zz file
  uint32_t compressed_size = 0;    // bytes there
  uint32_t uncompressed_size = 0;  // after inflating
};

struct SwordEntry {
  uint32_t block = 0;
  uint32_t offset = 0;  // in the uncompressed block
  uint32_t size = 0;    // 0: no text for this verse
};

// Parses a block index; throws cca::Error naming `what` when its size is not a multiple of 12.
std::vector<SwordBlock> parse_sword_block_index(std::string_view bytes, const std::string& what);
// Parses an entry index of `record_bytes` (10 or 12) per record.
std::vector<SwordEntry> parse_sword_entry_index(std::string_view bytes, int record_bytes,
                                                const std::string& what);
// Inflates every block of `data` (the .?zz file); checks each against its recorded size.
std::vector<std::string> inflate_sword_blocks(std::string_view data,
                                              const std::vector<SwordBlock>& blocks,
                                              const std::string& what);

// OSIS -> plain text: notes dropped with their content, every other tag removed; paragraph,
// line, title and chapter tags become line breaks; the five XML entities decoded; runs of spaces
// collapsed. A chapter start tag (<chapter sID=.../>) becomes a form feed '\f' so callers can
// cut documents there.
std::string strip_osis(std::string_view osis);

struct SwordStats {
  int64_t entries = 0;     // non-empty entries read
  int64_t duplicates = 0;  // entries sharing another's text (linked verses in commentaries)
};

// Reads the module in `dir` (both testaments when present): one document per chapter, each
// paragraph on one line. Throws cca::Error naming the folder when no testament is there.
std::vector<Document> read_sword_module(const std::string& dir, SwordStats* stats = nullptr);

}  // namespace cca::data
