#include "data/unicode_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <memory>

#include "util/error.h"
#include "util/format.h"

namespace cca::data {

namespace {

pcre2_code* as_code(void* code) {
  return static_cast<pcre2_code*>(code);
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  if (pcre2_get_error_message(code, buffer, sizeof buffer) < 0) return format("error {}", code);
  return reinterpret_cast<const char*>(buffer);
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

// Bytes of the UTF-8 character starting at text[pos] (1 for a stray continuation byte).
size_t utf8_length_at(std::string_view text, size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  const size_t n = lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
  return std::min(n, text.size() - pos);
}

}  // namespace

std::string translate_oniguruma_pattern(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size() + 16);
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char next = pattern[++i];
      if (next == 's') {
        out += in_class ? "\\p{White_Space}" : "[\\p{White_Space}]";
      } else if (next == 'S') {
        out += in_class ? "\\P{White_Space}" : "[\\P{White_Space}]";
      } else {
        out += c;
        out += next;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal, not the end of the class.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

std::string quote_regex(std::string_view literal) {
  std::string out;
  for (const char c : literal) {
    if (std::string_view("\\^$.|?*+()[]{}-/#").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

UnicodeRegex::UnicodeRegex(const std::string& pattern, const std::string& what)
    : pattern_(pattern) {
  const std::string translated = translate_oniguruma_pattern(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) {
    throw Error(format("{}: the regular expression \"{}\" does not compile: {} (at byte {} of {})",
                       what, pattern, pcre2_message(error), offset, translated));
  }
  // Without JIT (some architectures) matching still works, only slower.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

UnicodeRegex::~UnicodeRegex() {
  pcre2_code_free(as_code(code_));
}

void UnicodeRegex::for_each_match(std::string_view text,
                                  const std::function<void(size_t, size_t)>& on_match) const {
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(
      pcre2_match_data_create_from_pattern(as_code(code_), nullptr));
  if (!data) throw Error("out of memory for a regular expression match");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t start = 0;
  uint32_t options = 0;  // the first call checks the UTF-8 of the whole text, later ones need not
  while (start <= text.size()) {
    const int rc =
        pcre2_match(as_code(code_), subject, text.size(), start, options, data.get(), nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0) {
      throw Error(format("matching the pattern \"{}\" failed: {}", pattern_, pcre2_message(rc)));
    }
    options = PCRE2_NO_UTF_CHECK;
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    const size_t begin = ovector[0], end = ovector[1];
    on_match(begin, end);
    if (end > begin) {
      start = end;
    } else if (end < text.size()) {
      start = end + utf8_length_at(text, end);
    } else {
      return;
    }
  }
}

}  // namespace cca::data
