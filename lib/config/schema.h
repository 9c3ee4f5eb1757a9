// The schema: one entry per configuration key, with its type, default, allowed values and help.
// Adding a key means adding a member to config.h and one line to the table in schema.cpp; a key
// only one attention variant reads is declared by that variant's descriptor instead
// (setting_key, stored in AttentionConfig::settings).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"

namespace cca {

// data.train / data.val: one path, or a list of sources (lib/config/data_sources.h).
struct SourceListRef {
  std::string* single;
  std::vector<DataSource>* list;
};

using FieldRef = std::variant<int64_t*, double*, bool*, std::string*, std::optional<int64_t>*,
                              SourceListRef, std::vector<DataStage>*>;

struct IntSpec {
  int64_t fallback;
  int64_t min;
  int64_t max;
};
struct FloatSpec {
  double fallback;
  double min;
  double max;
};
struct BoolSpec {
  bool fallback;
};
struct StringSpec {
  std::string fallback;
};
struct EnumSpec {
  std::string fallback;
  std::vector<std::string> choices;
};
// An integer that may be null (absent); null is its default.
struct OptionalIntSpec {
  int64_t min;
  int64_t max;
};

// A path or a list of sources (data.train with weights, data.val without); the fallback is a path.
struct SourceListSpec {
  std::string fallback;
  bool weighted;
};
// data.stages: a list of curriculum stages, empty by default.
struct StageListSpec {};

using TypeSpec = std::variant<IntSpec, FloatSpec, BoolSpec, StringSpec, EnumSpec, OptionalIntSpec,
                              SourceListSpec, StageListSpec>;

struct KeySpec {
  std::string path;  // "model.d_model": the member path in Config (or the settings key)
  std::function<FieldRef(Config&)> field;
  TypeSpec type;
  std::string help;

  std::string type_name() const;     // "int", "float", "bool", "string", "enum", "int or null"
  std::string default_text() const;  // the default as it would be written in YAML
  std::string allowed_text() const;  // "1 .. 65536", "mha | gqa | ...", "" when anything goes
};

// A key stored in AttentionConfig::settings under its own path (for variant descriptors).
KeySpec setting_key(const std::string& path, TypeSpec type, std::string help);

// Every key, in the order --help-config and --print-config list them.
const std::vector<KeySpec>& config_keys();
// The key with this exact path, or nullptr.
const KeySpec* find_key(const std::string& path);
// True for "model", "attention", "attention.cca", ...: paths that hold keys rather than values.
bool is_section(const std::string& path);
// The one-line description of a top-level section.
std::string section_help(const std::string& section);

// YAML text of a number that reads back as the same double, and of a string (quoted).
std::string yaml_number_text(double value);
std::string yaml_quoted_text(const std::string& text);

// Reads a key's current value as YAML text ("768", "true", "cca", "null", "'runs/x'").
std::string value_text(const KeySpec& key, Config& config);

}  // namespace cca
