// Any dictd dictionary (dict-wn, dict-foldoc, dict-jargon, dict-devil...) as plain documents:
// one document per entry, wrapped lines joined into paragraphs. GCIDE has its own cleaner
// (gcide.h) for its richer markup; this one handles the markup the others share.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "data/text_source.h"

namespace cca::data {

// Removes cross-reference braces "{word}" and bracketed label lists such as WordNet's
// "[syn: {a}, {b}]" (a lowercase label, a colon, then a list: not prose), starts a paragraph at
// each numbered sense ("n 1:", "2:"), and unwraps the rest.
std::string clean_dictd_entry(std::string_view raw);

struct DictdStats {
  int64_t entries = 0;
  int64_t skipped_invalid = 0;  // entries with invalid UTF-8
};

// Reads `dict_path` (.dict.dz) through `index_path`; throws cca::Error naming a bad file.
std::vector<Document> read_dictd_documents(const std::string& dict_path,
                                           const std::string& index_path,
                                           DictdStats* stats = nullptr);

}  // namespace cca::data
