// A small "{}"-style formatter. Our code formats through this instead of fmt because LibTorch 2.x
// ships fmt 12 headers while Debian's spdlog needs fmt 9: keeping fmt out of every translation
// unit that sees torch headers removes that clash for good (see docs/build.md).
//
// Supported fields: {} and {:SPEC} where SPEC is [<|>][width][.precision][f|e|g|x]. "{{" and "}}"
// are literal braces.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace cca {
namespace detail {

struct FieldSpec {
  char align = 0;  // '<', '>' or 0 (numbers right, text left)
  int width = 0;
  int precision = -1;
  char type = 0;  // 'f', 'e', 'g', 'x' or 0
};

// Parses the text between ':' and '}'; throws std::invalid_argument on a malformed spec.
FieldSpec parse_field_spec(std::string_view spec);
void apply_field_spec(std::ostringstream& out, const FieldSpec& spec);
// Finds the next field starting at `pos`, copying literal text to `out`. Returns false at the end.
bool next_field(std::string_view pattern, size_t& pos, std::string& out, std::string_view& spec);

template <class T>
void append_field(std::string& out, std::string_view spec_text, const T& value) {
  std::ostringstream field;
  const FieldSpec spec = parse_field_spec(spec_text);
  apply_field_spec(field, spec);
  if constexpr (std::is_same_v<T, bool>) {
    field << (value ? "true" : "false");
  } else {
    field << value;
  }
  out += field.str();
}

inline void format_rest(std::string& out, std::string_view pattern, size_t pos) {
  std::string_view spec;
  if (next_field(pattern, pos, out, spec)) throw std::invalid_argument("too few format arguments");
}

template <class T, class... Rest>
void format_rest(std::string& out, std::string_view pattern, size_t pos, const T& value,
                 const Rest&... rest) {
  std::string_view spec;
  if (!next_field(pattern, pos, out, spec))
    throw std::invalid_argument("too many format arguments");
  append_field(out, spec, value);
  format_rest(out, pattern, pos, rest...);
}

}  // namespace detail

template <class... Args>
std::string format(std::string_view pattern, const Args&... args) {
  std::string out;
  out.reserve(pattern.size() + 16 * sizeof...(Args));
  detail::format_rest(out, pattern, 0, args...);
  return out;
}

// "12.3M", "4.19G": a count with an SI suffix and three significant digits.
std::string human_count(double value);
// "1.50 KiB", "3.2 GiB".
std::string human_bytes(double bytes);
// A duration as a clock shows it: "1:05", "2:03:09"; "?" when negative or not finite.
std::string render_duration(double seconds);

}  // namespace cca
