#include "data/unicode_text.h"

#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include <cstdlib>
#include <memory>

#include "util/error.h"

namespace cca::data {

namespace {

const uint8_t* bytes_of(std::string_view text) {
  return reinterpret_cast<const uint8_t*>(text.data());
}

bool is_word_char(ucs4_t c) {
  return uc_is_property_alphabetic(c) || uc_is_general_category(c, UC_CATEGORY_M) ||
         uc_is_general_category(c, UC_CATEGORY_Nd) || uc_is_general_category(c, UC_CATEGORY_Pc) ||
         uc_is_property_join_control(c);
}

// Length of the valid UTF-8 sequence at the start of `s` (n > 0 bytes), or 0 when invalid; on
// 0, `maximal` is the length of the longest prefix that could still begin a valid sequence.
size_t valid_sequence(const unsigned char* s, size_t n, size_t& maximal) {
  const unsigned char lead = s[0];
  maximal = 1;
  if (lead < 0x80) return 1;
  size_t need = 0;
  unsigned char low = 0x80, high = 0xBF;  // the allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  for (size_t i = 1; i < need; ++i) {
    if (i >= n) return 0;
    const unsigned char lo = i == 1 ? low : 0x80, hi = i == 1 ? high : 0xBF;
    if (s[i] < lo || s[i] > hi) return 0;
    maximal = i + 1;
  }
  return need;
}

}  // namespace

size_t invalid_utf8_offset(std::string_view text) {
  const uint8_t* bad = u8_check(bytes_of(text), text.size());
  return bad == nullptr ? text.size() : static_cast<size_t>(bad - bytes_of(text));
}

bool is_valid_utf8(std::string_view text) {
  return u8_check(bytes_of(text), text.size()) == nullptr;
}

std::string unicode_normalize(std::string_view text, UnicodeForm form) {
  if (text.empty()) return {};
  uninorm_t nf = UNINORM_NFC;
  if (form == UnicodeForm::nfd) nf = UNINORM_NFD;
  if (form == UnicodeForm::nfkc) nf = UNINORM_NFKC;
  if (form == UnicodeForm::nfkd) nf = UNINORM_NFKD;
  size_t length = 0;
  std::unique_ptr<uint8_t, decltype(&std::free)> result(
      u8_normalize(nf, bytes_of(text), text.size(), nullptr, &length), &std::free);
  if (!result) throw Error("Unicode normalization failed (invalid UTF-8 or out of memory)");
  return std::string(reinterpret_cast<const char*>(result.get()), length);
}

std::string utf8_lossy(std::string_view bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(bytes.size());
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0;
  while (i < bytes.size()) {
    size_t maximal = 1;
    const size_t n = valid_sequence(s + i, bytes.size() - i, maximal);
    if (n > 0) {
      out.append(bytes.data() + i, n);
      i += n;
    } else {
      out += kReplacement;
      i += maximal;
    }
  }
  return out;
}

bool text_ends_with_word_char(std::string_view text) {
  if (text.empty()) return false;
  ucs4_t c = 0;
  if (u8_prev(&c, bytes_of(text) + text.size(), bytes_of(text)) == nullptr) return false;
  return is_word_char(c);
}

bool text_starts_with_word_char(std::string_view text) {
  if (text.empty()) return false;
  ucs4_t c = 0;
  u8_mbtouc(&c, bytes_of(text), text.size());
  return is_word_char(c);
}

size_t leading_white_space(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    ucs4_t c = 0;
    const int n = u8_mbtouc(&c, bytes_of(text) + pos, text.size() - pos);
    if (n <= 0 || !uc_is_property_white_space(c)) break;
    pos += static_cast<size_t>(n);
  }
  return pos;
}

size_t trailing_white_space_start(std::string_view text) {
  const uint8_t* start = bytes_of(text);
  const uint8_t* pos = start + text.size();
  while (pos > start) {
    ucs4_t c = 0;
    const uint8_t* prev = u8_prev(&c, pos, start);
    if (prev == nullptr || !uc_is_property_white_space(c)) break;
    pos = prev;
  }
  return static_cast<size_t>(pos - start);
}

}  // namespace cca::data
