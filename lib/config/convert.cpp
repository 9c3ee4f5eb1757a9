#include "config/convert.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "config/data_sources.h"
#include "util/strings.h"

namespace cca {
namespace {

std::string describe_node(const YAML::Node& node) {
  if (node.IsNull()) return "null";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "'" + node.Scalar() + "'";
}

bool parse_double(const std::string& text, double& out) {
  std::string t = text;
  std::string lower = t;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower == ".inf" || lower == "+.inf" || lower == "inf") {
    out = INFINITY;
    return true;
  }
  if (lower == "-.inf" || lower == "-inf") {
    out = -INFINITY;
    return true;
  }
  if (t.empty()) return false;
  t.erase(std::remove(t.begin(), t.end(), '_'), t.end());  // 50_304 reads as 50304
  char* end = nullptr;
  errno = 0;
  out = std::strtod(t.c_str(), &end);
  return errno == 0 && end == t.c_str() + t.size() && std::isfinite(out);
}

bool parse_int(const std::string& text, int64_t& out) {
  std::string t = text;
  t.erase(std::remove(t.begin(), t.end(), '_'), t.end());
  if (t.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(t.c_str(), &end, 10);
  if (errno == 0 && end == t.c_str() + t.size()) {
    out = v;
    return true;
  }
  double d = 0;  // accept 1e6 and 2.0, which are whole numbers
  if (parse_double(t, d) && std::fabs(d) < 9.2e18 && d == std::floor(d)) {
    out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

std::string range_problem(double v, double min, double max, const KeySpec& key) {
  if (v < min || v > max) {
    std::ostringstream out;
    out << v << " is out of range; allowed " << key.allowed_text();
    return out.str();
  }
  return "";
}

std::string assign_int(const IntSpec& spec, const KeySpec& key, const YAML::Node& v,
                       int64_t* field) {
  int64_t parsed = 0;
  if (!v.IsScalar() || !parse_int(v.Scalar(), parsed)) {
    return "expects an integer, got " + describe_node(v);
  }
  if (parsed < spec.min || parsed > spec.max) {
    return std::to_string(parsed) + " is out of range; allowed " + key.allowed_text();
  }
  *field = parsed;
  return "";
}

std::string assign_float(const FloatSpec& spec, const KeySpec& key, const YAML::Node& v,
                         double* field) {
  double parsed = 0;
  if (!v.IsScalar() || !parse_double(v.Scalar(), parsed)) {
    return "expects a number, got " + describe_node(v);
  }
  std::string problem = range_problem(parsed, spec.min, spec.max, key);
  if (problem.empty()) *field = parsed;
  return problem;
}

std::string assign_bool(const YAML::Node& v, bool* field) {
  if (v.IsScalar()) {
    std::string t = v.Scalar();
    std::transform(t.begin(), t.end(), t.begin(), ::tolower);
    if (t == "true" || t == "yes" || t == "on") return *field = true, "";
    if (t == "false" || t == "no" || t == "off") return *field = false, "";
  }
  return "expects true or false, got " + describe_node(v);
}

std::string assign_enum(const EnumSpec& spec, const KeySpec& key, const YAML::Node& v,
                        std::string* field) {
  if (!v.IsScalar()) return "expects one of " + key.allowed_text() + ", got " + describe_node(v);
  const std::string& text = v.Scalar();
  if (std::find(spec.choices.begin(), spec.choices.end(), text) != spec.choices.end()) {
    *field = text;
    return "";
  }
  std::string problem = "'" + text + "' is not one of " + key.allowed_text();
  const std::string guess = did_you_mean(text, spec.choices);
  if (!guess.empty()) problem += " (did you mean '" + guess + "'?)";
  return problem;
}

}  // namespace

std::string assign_value(const KeySpec& key, const YAML::Node& value, Config& config) {
  FieldRef field = key.field(config);
  if (const auto* s = std::get_if<IntSpec>(&key.type)) {
    return assign_int(*s, key, value, std::get<int64_t*>(field));
  }
  if (const auto* s = std::get_if<FloatSpec>(&key.type)) {
    return assign_float(*s, key, value, std::get<double*>(field));
  }
  if (std::holds_alternative<BoolSpec>(key.type)) {
    return assign_bool(value, std::get<bool*>(field));
  }
  if (const auto* s = std::get_if<EnumSpec>(&key.type)) {
    return assign_enum(*s, key, value, std::get<std::string*>(field));
  }
  if (std::holds_alternative<StringSpec>(key.type)) {
    if (value.IsNull()) return *std::get<std::string*>(field) = "", "";
    if (!value.IsScalar()) return "expects a string, got " + describe_node(value);
    *std::get<std::string*>(field) = value.Scalar();
    return "";
  }
  if (const auto* s = std::get_if<SourceListSpec>(&key.type)) {
    const SourceListRef ref = std::get<SourceListRef>(field);
    return parse_source_list(value,
                             s->weighted ? SourceListKind::train : SourceListKind::validation,
                             *ref.single, *ref.list);
  }
  if (std::holds_alternative<StageListSpec>(key.type)) {
    return parse_stage_list(value, *std::get<std::vector<DataStage>*>(field));
  }
  const auto& spec = std::get<OptionalIntSpec>(key.type);
  auto* target = std::get<std::optional<int64_t>*>(field);
  if (value.IsNull() || (value.IsScalar() && (value.Scalar() == "null" || value.Scalar() == "~"))) {
    *target = std::nullopt;
    return "";
  }
  int64_t parsed = 0;
  IntSpec as_int{0, spec.min, spec.max};
  std::string problem = assign_int(as_int, key, value, &parsed);
  if (!problem.empty())
    return problem.find("expects") == 0 ? "expects an integer or null, got " + describe_node(value)
                                        : problem;
  *target = parsed;
  return "";
}

}  // namespace cca
