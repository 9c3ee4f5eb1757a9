#include "data/corpus_text.h"

#include <cstdint>
#include <cstdlib>

#include "util/strings.h"

namespace cca::data {
namespace {

bool is_blank(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\v';
}

// Appends `line` with its spaces collapsed and ends trimmed.
void append_tidy(std::string& out, std::string_view line) {
  bool pending_space = false;
  bool any = false;
  for (char c : line) {
    if (is_blank(c)) {
      pending_space = any;
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    any = true;
    out += c;
  }
}

template <typename Fn>
void for_each_line(std::string_view text, Fn fn) {
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    fn(text.substr(pos, end - pos));
    pos = end + 1;
  }
}

bool is_blank_line(std::string_view line) {
  for (char c : line) {
    if (!is_blank(c)) return false;
  }
  return true;
}

}  // namespace

std::string tidy_lines(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for_each_line(text, [&](std::string_view line) {
    if (is_blank_line(line)) return;
    if (!out.empty()) out += '\n';
    append_tidy(out, line);
  });
  return out;
}

std::string unwrap_paragraphs(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_paragraph = false;
  for_each_line(text, [&](std::string_view line) {
    if (is_blank_line(line)) {
      in_paragraph = false;
      return;
    }
    if (!out.empty()) out += in_paragraph ? ' ' : '\n';
    append_tidy(out, line);
    in_paragraph = true;
  });
  return out;
}

void append_text_code_point(std::string& out, uint32_t code_point) {
  if (code_point < 0x110000 && !is_surrogate(code_point)) append_utf8(out, code_point);
}

size_t append_xml_char(std::string_view text, size_t at, std::string& out) {
  if (text[at] != '&') {
    out += text[at];
    return 1;
  }
  const size_t semi = text.find(';', at);
  if (semi == std::string_view::npos || semi - at > 10) {
    out += '&';
    return 1;
  }
  const std::string_view name = text.substr(at + 1, semi - at - 1);
  static constexpr struct {
    const char* name;
    char c;
  } kNamed[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
  for (const auto& n : kNamed) {
    if (name == n.name) {
      out += n.c;
      return semi - at + 1;
    }
  }
  if (name.size() >= 2 && name[0] == '#') {
    const bool hex = name[1] == 'x' || name[1] == 'X';
    const std::string digits(name.substr(hex ? 2 : 1));
    char* end = nullptr;
    const unsigned long cp = std::strtoul(digits.c_str(), &end, hex ? 16 : 10);
    if (!digits.empty() && end != nullptr && *end == '\0') {
      append_text_code_point(out, static_cast<uint32_t>(cp));
      return semi - at + 1;
    }
  }
  out += '&';
  return 1;
}

std::vector<std::string> split_at_lines(std::string_view text, std::string_view separator) {
  std::vector<std::string> parts(1);
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);  // no empty last line
  for_each_line(text, [&](std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line == separator) {
      parts.emplace_back();
      return;
    }
    parts.back().append(line.data(), line.size());
    parts.back() += '\n';
  });
  return parts;
}

}  // namespace cca::data
