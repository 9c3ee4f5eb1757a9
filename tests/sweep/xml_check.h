// A strict little XML well-formedness check for the SVG we write (no DTDs, no CDATA): one root
// element, tags balanced and nested, attributes quoted and unique per tag, and no raw '<' or bare
// '&' in text or attribute values.
#pragma once

#include <cctype>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace cca::testing {

struct XmlSummary {
  std::string problem;                  // empty when well-formed
  std::string root;                     // the root element's name
  std::map<std::string, int> elements;  // how many of each element
  std::vector<std::string> texts;       // the text content pieces, unescaped entities left as is
};

inline XmlSummary check_xml(std::string_view s) {
  XmlSummary out;
  std::vector<std::string> open;
  size_t i = 0;
  int roots = 0;
  const auto fail = [&](const std::string& what) {
    if (out.problem.empty()) out.problem = what + " at byte " + std::to_string(i);
  };
  const auto name_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == ':' || c == '-' ||
           c == '.';
  };
  const auto entity_ok = [&](size_t at) {  // s[at] == '&'
    const size_t semi = s.find(';', at);
    if (semi == std::string_view::npos || semi - at > 10 || semi == at + 1) return false;
    const std::string_view name = s.substr(at + 1, semi - at - 1);
    if (name[0] == '#') return name.size() > 1;
    static const std::set<std::string_view> known = {"amp", "lt", "gt", "quot", "apos"};
    return known.count(name) > 0;
  };
  while (i < s.size() && out.problem.empty()) {
    if (s[i] != '<') {
      const size_t next = std::min(s.find('<', i), s.size());
      for (size_t k = i; k < next; ++k) {
        if (s[k] == '&' && !entity_ok(k)) fail("bare '&' in text");
      }
      const std::string_view text = s.substr(i, next - i);
      if (text.find_first_not_of(" \n\t\r") != std::string_view::npos) {
        if (open.empty()) fail("text outside the root element");
        out.texts.emplace_back(text);
      }
      i = next;
      continue;
    }
    if (s.compare(i, 5, "<?xml") == 0) {
      if (i != 0) fail("XML declaration not at the start");
      i = s.find("?>", i);
      if (i == std::string_view::npos) return fail("unterminated declaration"), out;
      i += 2;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      i = s.find("-->", i);
      if (i == std::string_view::npos) return fail("unterminated comment"), out;
      i += 3;
      continue;
    }
    const bool closing = s.compare(i, 2, "</") == 0;
    i += closing ? 2 : 1;
    const size_t name_start = i;
    while (i < s.size() && name_char(s[i])) ++i;
    const std::string name(s.substr(name_start, i - name_start));
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) {
      fail("bad tag name");
      break;
    }
    if (closing) {
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      if (i >= s.size() || s[i] != '>') fail("bad closing tag");
      if (open.empty() || open.back() != name) fail("</" + name + "> closes nothing open");
      if (!open.empty()) open.pop_back();
      ++i;
      continue;
    }
    std::set<std::string> attributes;
    bool self_closing = false;
    for (;;) {
      const size_t before = i;
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      if (i >= s.size()) return fail("unterminated tag"), out;
      if (s[i] == '>') break;
      if (s.compare(i, 2, "/>") == 0) {
        self_closing = true;
        ++i;
        break;
      }
      if (i == before) return fail("attributes must be separated by space"), out;
      const size_t a = i;
      while (i < s.size() && name_char(s[i])) ++i;
      const std::string attribute(s.substr(a, i - a));
      if (attribute.empty() || i >= s.size() || s[i] != '=') return fail("bad attribute"), out;
      if (!attributes.insert(attribute).second) fail("attribute '" + attribute + "' twice");
      ++i;
      const char quote = i < s.size() ? s[i] : 0;
      if (quote != '"' && quote != '\'') return fail("unquoted attribute value"), out;
      const size_t end = s.find(quote, i + 1);
      if (end == std::string_view::npos) return fail("unterminated attribute value"), out;
      for (size_t k = i + 1; k < end; ++k) {
        if (s[k] == '<') fail("'<' in an attribute value");
        if (s[k] == '&' && !entity_ok(k)) fail("bare '&' in an attribute value");
      }
      i = end + 1;
    }
    ++i;  // past '>'
    if (open.empty() && ++roots > 1) fail("more than one root element");
    if (open.empty()) out.root = name;
    ++out.elements[name];
    if (!self_closing) open.push_back(name);
  }
  if (out.problem.empty() && !open.empty()) out.problem = "<" + open.back() + "> never closed";
  if (out.problem.empty() && roots == 0) out.problem = "no root element";
  return out;
}

}  // namespace cca::testing
