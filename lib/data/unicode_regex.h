// Unicode regular expressions for tokenizer.json pre-tokenizers (GPT-2's and Llama-3's split
// patterns), on Debian's PCRE2 (UTF + UCP, JIT-compiled). The patterns are written for Oniguruma,
// the engine of Hugging Face `tokenizers`; the few places where PCRE2 reads them differently are
// rewritten before compiling (see translate_oniguruma_pattern).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace cca::data {

class UnicodeRegex {
 public:
  // Throws cca::Error naming `what` (e.g. "tokenizer.json: pre_tokenizer.pattern.Regex") and the
  // position when the pattern does not compile.
  UnicodeRegex(const std::string& pattern, const std::string& what);
  ~UnicodeRegex();
  UnicodeRegex(const UnicodeRegex&) = delete;
  UnicodeRegex& operator=(const UnicodeRegex&) = delete;

  // Calls on_match(start, end) for each match of the pattern in `text`, left to right, as
  // Oniguruma's find_iter does: the search resumes at the end of each match, one character further
  // after an empty one. `text` must be valid UTF-8 (checked: cca::Error otherwise). Safe to call
  // from several threads at once.
  void for_each_match(std::string_view text,
                      const std::function<void(size_t, size_t)>& on_match) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8
};

// Oniguruma's \s is Unicode's White_Space property, which includes U+0085 (NEL); PCRE2's \s under
// UCP does not. Rewrites \s and \S (inside and outside character classes) into PCRE2's
// \p{White_Space} forms, leaving everything else as written.
std::string translate_oniguruma_pattern(std::string_view pattern);

// Escapes `literal` so that it matches itself (Split pre-tokenizers with a String pattern).
std::string quote_regex(std::string_view literal);

}  // namespace cca::data
