#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace cca {

// Edit distance (insert, delete, substitute = 1 each).
size_t edit_distance(const std::string& a, const std::string& b);
// The candidate a user most likely meant by `word`, or "" when none is close. For dotted paths a
// candidate with the same last component also counts ("train.lr" -> "optim.lr").
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);
// "1, 2, 3, 4, 6, 12": the divisors of n, at most `limit` of them, smallest first.
std::string divisors_text(long long n, size_t limit = 16);
// `text` as a double-quoted JSON string literal (\", \\, \n, \r, \t, \u00XX for other control
// bytes). The same text is a valid YAML double-quoted scalar.
void append_quoted(std::string& out, std::string_view text);
std::string join(const std::vector<std::string>& parts, const std::string& separator);

// Appends code point `cp` (at most U+10FFFF) as UTF-8. Surrogates (U+D800..U+DFFF) are encoded
// as their 3-byte form, which is not valid UTF-8: whether to keep, drop or refuse them is the
// caller's policy (the JSON reader keeps a lone one so the UTF-8 check downstream sees it; the
// corpus builder drops them).
void append_utf8(std::string& out, uint32_t cp);
inline bool is_surrogate(uint32_t cp) {
  return cp >= 0xD800 && cp < 0xE000;
}
// Calls visit(line, number) for each line of `text` (numbered from 1, without its '\n') that holds
// more than blanks, tabs and '\r': the records of a JSONL file.
void for_each_nonblank_line(std::string_view text,
                            const std::function<void(std::string_view, int64_t)>& visit);
// "[2, 3]" for a tensor shape; "[]" for a scalar.
std::string shape_text(const std::vector<int64_t>& shape);

}  // namespace cca
