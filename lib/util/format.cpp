#include "util/format.h"

#include <cctype>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <stdexcept>

namespace cca {
namespace detail {

FieldSpec parse_field_spec(std::string_view spec) {
  FieldSpec result;
  size_t i = 0;
  if (i < spec.size() && (spec[i] == '<' || spec[i] == '>')) result.align = spec[i++];
  while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) {
    result.width = result.width * 10 + (spec[i++] - '0');
  }
  if (i < spec.size() && spec[i] == '.') {
    ++i;
    result.precision = 0;
    if (i == spec.size() || !std::isdigit(static_cast<unsigned char>(spec[i]))) {
      throw std::invalid_argument("format spec: precision expected after '.'");
    }
    while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) {
      result.precision = result.precision * 10 + (spec[i++] - '0');
    }
  }
  if (i < spec.size() && std::string_view("fegx").find(spec[i]) != std::string_view::npos) {
    result.type = spec[i++];
  }
  if (i != spec.size())
    throw std::invalid_argument("format spec not understood: " + std::string(spec));
  return result;
}

void apply_field_spec(std::ostringstream& out, const FieldSpec& spec) {
  if (spec.width > 0) out << std::setw(spec.width);
  if (spec.align == '<') out << std::left;
  if (spec.align == '>') out << std::right;
  if (spec.type == 'f') out << std::fixed;
  if (spec.type == 'e') out << std::scientific;
  if (spec.type == 'x') out << std::hex;
  if (spec.precision >= 0) out << std::setprecision(spec.precision);
}

bool next_field(std::string_view pattern, size_t& pos, std::string& out, std::string_view& spec) {
  while (pos < pattern.size()) {
    const char c = pattern[pos];
    if ((c == '{' || c == '}') && pos + 1 < pattern.size() && pattern[pos + 1] == c) {
      out += c;
      pos += 2;
      continue;
    }
    if (c == '{') {
      const size_t close = pattern.find('}', pos);
      if (close == std::string_view::npos) throw std::invalid_argument("unclosed '{' in format");
      std::string_view inside = pattern.substr(pos + 1, close - pos - 1);
      if (!inside.empty() && inside[0] != ':') throw std::invalid_argument("only {} and {:spec}");
      spec = inside.empty() ? inside : inside.substr(1);
      pos = close + 1;
      return true;
    }
    out += c;
    ++pos;
  }
  return false;
}

}  // namespace detail

std::string human_count(double value) {
  static const char* const suffixes[] = {"", "K", "M", "G", "T", "P"};
  int index = 0;
  double scaled = value;
  while (std::fabs(scaled) >= 1000.0 && index < 5) {
    scaled /= 1000.0;
    ++index;
  }
  if (index == 0) return format("{}", static_cast<long long>(std::llround(value)));
  const int decimals = std::fabs(scaled) >= 100 ? 1 : (std::fabs(scaled) >= 10 ? 2 : 3);
  std::ostringstream out;
  out << std::fixed << std::setprecision(decimals) << scaled << suffixes[index];
  return out.str();
}

std::string human_bytes(double bytes) {
  static const char* const suffixes[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int index = 0;
  while (bytes >= 1024.0 && index < 4) {
    bytes /= 1024.0;
    ++index;
  }
  std::ostringstream out;
  if (index == 0) {
    out << static_cast<long long>(bytes) << " B";
  } else {
    out << std::fixed << std::setprecision(2) << bytes << ' ' << suffixes[index];
  }
  return out.str();
}

std::string render_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  const int64_t h = total / 3600, m = (total / 60) % 60, s = total % 60;
  const auto two_digits = [](int64_t v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  return h > 0 ? format("{}:{}:{}", h, two_digits(m), two_digits(s))
               : format("{}:{}", m, two_digits(s));
}

}  // namespace cca
