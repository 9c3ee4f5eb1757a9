// The built-in corpus's text: GCIDE, the GNU Collaborative International Dictionary of English
// (Webster's 1913 plus WordNet), as Debian's dict-gcide installs it for dictd. Each dictionary
// entry becomes one plain-text document: markup removed, wrapped lines joined into paragraphs.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cca::data {

constexpr const char* kGcideDict = "/usr/share/dictd/gcide.dict.dz";
constexpr const char* kGcideIndex = "/usr/share/dictd/gcide.index";

// One byte range of the uncompressed dictionary, from the dictd index.
struct DictRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};

// Decodes dictd's base64 numbers ("l4vn"); throws cca::Error on a foreign character or overflow.
uint64_t decode_dictd_number(std::string_view text);

// Reads a dictd index: the distinct entry ranges in offset order, without the "00-database-*"
// metadata entries. Throws cca::Error naming the file and line for malformed lines.
std::vector<DictRange> read_dictd_index(const std::string& path);

// Decompresses a dictzip (gzip-compatible) file completely.
std::string read_gzip_file(const std::string& path);

// Turns one raw entry into plain text: drops source tags such as "[1913 Webster]" and
// pronunciations "\Pro*nun`ci*a"tion\", unwraps cross references "{Word}", maps accent notation
// such as "['e]" to Unicode, and joins wrapped lines (one paragraph per line).
std::string clean_gcide_entry(std::string_view raw);

struct GcideStats {
  int64_t entries = 0;          // ranges in the index
  int64_t documents = 0;        // written
  int64_t skipped_invalid = 0;  // entries with invalid UTF-8 in the source
  int64_t bytes = 0;            // of clean text
};

// Writes every entry as a JSONL line {"text": ...} to `jsonl_path`.
GcideStats write_gcide_jsonl(const std::string& dict_path, const std::string& index_path,
                             const std::string& jsonl_path);

}  // namespace cca::data
