// Small text helpers shared by the prose corpus's readers (sword, dictd, R data, plain text).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cca::data {

// Each line trimmed, runs of spaces and tabs collapsed to one space, empty lines dropped; the
// lines joined with '\n'. One line per paragraph is how every reader hands text on.
std::string tidy_lines(std::string_view text);

// Unwraps hard-wrapped text: lines between blank lines join (with a space) into one paragraph;
// paragraphs are separated by '\n'. Spaces are tidied as in tidy_lines.
std::string unwrap_paragraphs(std::string_view text);

// Appends the character at text[at] to `out`, decoding the XML entities &amp; &lt; &gt; &quot;
// &apos; and numeric ones (&#233; &#xE9;); returns how many bytes of `text` it consumed.
size_t append_xml_char(std::string_view text, size_t at, std::string& out);

// Appends a character reference's code point as UTF-8: nothing for values past U+10FFFF or
// surrogates (text the corpus keeps must be valid UTF-8).
void append_text_code_point(std::string& out, uint32_t code_point);

// Splits `text` at every line that is exactly `separator` (e.g. "%" in fortune files).
std::vector<std::string> split_at_lines(std::string_view text, std::string_view separator);

}  // namespace cca::data
