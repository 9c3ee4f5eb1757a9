// The Unicode text operations a tokenizer.json tokenizer needs beyond regular expressions:
// normalization forms (Debian's libunistring), the character classes `tokenizers` tests around
// added tokens, and UTF-8 checks and repair.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "data/bpe_config.h"

namespace cca::data {

bool is_valid_utf8(std::string_view text);
// The byte offset of the first invalid UTF-8 sequence, or text.size() when there is none.
size_t invalid_utf8_offset(std::string_view text);

// `text` (valid UTF-8) in the normalization form `form`.
std::string unicode_normalize(std::string_view text, UnicodeForm form);

// `bytes` as valid UTF-8: each maximal invalid subsequence becomes one U+FFFD, as Rust's
// String::from_utf8_lossy does (which `tokenizers` decodes with).
std::string utf8_lossy(std::string_view bytes);

// Regex \w of Rust's regex crate: Alphabetic, marks, decimal digits, connector punctuation and
// the joiners. Tested on the character before and after a single_word added token.
bool text_ends_with_word_char(std::string_view text);
bool text_starts_with_word_char(std::string_view text);
// Bytes of `text`'s leading White_Space run; the offset where its trailing run starts.
size_t leading_white_space(std::string_view text);
size_t trailing_white_space_start(std::string_view text);

}  // namespace cca::data
