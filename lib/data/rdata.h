// Character vectors from an R lazy-load database (*.rdb), as CRAN data packages such as
// r-cran-janeaustenr install them, read without R. An .rdb file is a run of records, each a
// 4-byte big-endian length and a zlib stream holding one object in R's XDR serialization; a
// character vector (STRSXP) is a count and then one CHARSXP (flags, length, bytes) per element.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "data/text_source.h"

namespace cca::data {

// The character vector serialized in `bytes` ("X\n" format, version 2 or 3), or an empty
// optional-like result (`ok` false) when the object is something else. NA elements become "".
struct RStrings {
  bool ok = false;
  std::vector<std::string> values;
};
RStrings parse_r_strings(std::string_view bytes, const std::string& what);

// Every record of an .rdb file, inflated, in file order. Throws cca::Error naming the file and
// the record's offset when a record is cut or does not inflate to its recorded length.
std::vector<std::string> read_rdb_records(const std::string& path);

// A novel's lines -> one document per chapter (a line "CHAPTER 12" or "Chapter XII" starts one),
// hard-wrapped lines joined into paragraphs.
std::vector<Document> novel_chapters(const std::vector<std::string>& lines,
                                     const std::string& origin);

// All character vectors of `rdb_path` as chapters; throws when the file holds none.
std::vector<Document> read_rdb_novels(const std::string& rdb_path);

}  // namespace cca::data
