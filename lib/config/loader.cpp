#include "config/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "config/convert.h"
#include "config/schema.h"
#include "config/validate.h"
#include "util/files.h"
#include "util/strings.h"

namespace cca {
namespace {

struct FlatEntry {
  std::string path;
  YAML::Node value;
  Origin origin;
};

// Collects the flattened entries of one config and every file it includes.
class TreeReader {
 public:
  explicit TreeReader(std::vector<Diagnostic>& diagnostics) : diagnostics_(diagnostics) {}

  void read_file(const std::string& path, const Origin& included_from) {
    const std::string canonical = files::canonical_path(path);
    const std::string key = canonical.empty() ? path : canonical;
    if (std::find(stack_.begin(), stack_.end(), key) != stack_.end()) {
      error(included_from, "include cycle: '" + path + "' is already being read");
      return;
    }
    if (files::exists(path) && !files::is_regular_file(path)) {
      error(included_from.file.empty() ? Origin{path, 0, 0} : included_from,
            "config '" + path + "' is not a regular file (a folder?); name a YAML file");
      return;
    }
    std::ifstream in(path);
    if (!in) {
      const std::string why = files::exists(path) ? "cannot be read" : "does not exist";
      error(included_from.file.empty() ? Origin{path, 0, 0} : included_from,
            "config file '" + path + "' " + why);
      return;
    }
    std::stringstream text;
    text << in.rdbuf();
    files_.push_back(path);
    stack_.push_back(key);
    read_text(text.str(), path, files::parent_path(path));
    stack_.pop_back();
  }

  void read_text(const std::string& text, const std::string& name, const std::string& base_dir) {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::ParserException& e) {
      error(Origin{name, e.mark.line + 1, e.mark.column + 1}, "YAML syntax error: " + e.msg);
      return;
    }
    if (root.IsNull()) return;  // an empty file is a valid, empty config
    if (!root.IsMap()) {
      error(origin_of(root, name),
            "the top level must be a mapping of sections (model:, train:, ...)");
      return;
    }
    if (root["include"]) read_includes(root["include"], name, base_dir);
    flatten(root, "", name);
  }

  std::vector<FlatEntry>& entries() { return entries_; }
  std::vector<std::string>& files() { return files_; }

 private:
  static Origin origin_of(const YAML::Node& node, const std::string& name) {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return Origin{name, 0, 0};
    return Origin{name, mark.line + 1, mark.column + 1};
  }

  void read_includes(const YAML::Node& node, const std::string& name, const std::string& base_dir) {
    std::vector<YAML::Node> items;
    if (node.IsScalar()) items.push_back(node);
    if (node.IsSequence()) {
      for (const YAML::Node& item : node) items.push_back(item);
    }
    if (items.empty() && !node.IsSequence()) {
      error(origin_of(node, name), "include: expects a file path or a list of file paths");
      return;
    }
    for (const YAML::Node& item : items) {
      if (!item.IsScalar()) {
        error(origin_of(item, name), "include: each entry must be a file path");
        continue;
      }
      const std::string& file = item.Scalar();
      const std::string target =
          !file.empty() && file[0] == '/' ? file : files::join(base_dir, file);
      read_file(files::lexically_normal(target), origin_of(item, name));
    }
  }

  void flatten(const YAML::Node& map, const std::string& prefix, const std::string& name) {
    std::map<std::string, Origin> seen;  // keys of this mapping, to catch duplicates
    for (const auto& pair : map) {
      // Copies: yaml-cpp's iterator yields temporaries.
      const YAML::Node key_node = pair.first;
      const YAML::Node value = pair.second;
      const std::string key = key_node.Scalar();
      if (prefix.empty() && key == "include") continue;
      const std::string path = prefix.empty() ? key : prefix + "." + key;
      const Origin origin = origin_of(key_node, name);
      auto [first, inserted] = seen.emplace(key, origin);
      if (!inserted) {
        error(origin,
              "duplicate key '" + path + "' (first set at " + first->second.describe() + ")");
        continue;
      }
      if (value.IsMap() && is_section(path)) {
        flatten(value, path, name);
      } else if (is_section(path)) {
        error(origin, "'" + path + "' is a section: expected a mapping of its keys (e.g. " +
                          first_key_under(path) + ")");
      } else {
        entries_.push_back(FlatEntry{path, value, origin});
      }
    }
  }

  static std::string first_key_under(const std::string& section) {
    for (const KeySpec& k : config_keys()) {
      if (k.path.compare(0, section.size() + 1, section + ".") == 0) return k.path;
    }
    return section;
  }

  void error(const Origin& origin, const std::string& message) {
    diagnostics_.push_back(Diagnostic{origin, message});
  }

  std::vector<Diagnostic>& diagnostics_;
  std::vector<FlatEntry> entries_;
  std::vector<std::string> files_;
  std::vector<std::string> stack_;
};

std::vector<std::string> all_paths() {
  std::vector<std::string> paths;
  std::set<std::string> sections;
  for (const KeySpec& k : config_keys()) {
    paths.push_back(k.path);
    for (size_t dot = k.path.find('.'); dot != std::string::npos; dot = k.path.find('.', dot + 1)) {
      sections.insert(k.path.substr(0, dot));
    }
  }
  paths.insert(paths.end(), sections.begin(), sections.end());
  return paths;
}

void parse_override(const std::string& text, std::vector<FlatEntry>& entries,
                    std::vector<Diagnostic>& diagnostics) {
  const Origin origin{"--set " + text, 0, 0};
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    diagnostics.push_back({origin, "--set expects key.path=value"});
    return;
  }
  const std::string path = text.substr(0, eq);
  YAML::Node value;
  try {
    value = YAML::Load(text.substr(eq + 1));
  } catch (const YAML::ParserException& e) {
    diagnostics.push_back({origin, "value is not valid YAML: " + e.msg});
    return;
  }
  if (is_section(path)) {
    diagnostics.push_back({origin, "'" + path + "' is a section; --set takes one key, e.g. " +
                                       path + ".<key>=value"});
    return;
  }
  entries.push_back(FlatEntry{path, value, origin});
}

LoadedConfig finish(TreeReader& reader, const std::string& subject, const LoadOptions& options,
                    std::vector<Diagnostic>& diagnostics) {
  for (const std::string& text : options.overrides) {
    parse_override(text, reader.entries(), diagnostics);
  }
  LoadedConfig loaded;
  loaded.config = default_config();
  loaded.files = reader.files();
  static const std::vector<std::string> known_paths = all_paths();
  for (const FlatEntry& entry : reader.entries()) {
    const KeySpec* key = find_key(entry.path);
    if (key == nullptr) {
      std::string message = "unknown key '" + entry.path + "'";
      const std::string guess = did_you_mean(entry.path, known_paths);
      if (!guess.empty()) message += " (did you mean '" + guess + "'?)";
      diagnostics.push_back({entry.origin, message});
      continue;
    }
    std::string problem = assign_value(*key, entry.value, loaded.config);
    if (!problem.empty()) {
      diagnostics.push_back({entry.origin, key->path + ": " + problem});
      continue;
    }
    loaded.origins[key->path] = entry.origin;
  }
  validate_config(loaded.config, loaded.origins, options.world_size, diagnostics, &loaded.warnings);
  if (!diagnostics.empty()) throw ConfigError(subject, std::move(diagnostics));
  return loaded;
}

}  // namespace

LoadedConfig load_config(const std::string& path, const LoadOptions& options) {
  std::vector<Diagnostic> diagnostics;
  TreeReader reader(diagnostics);
  if (!path.empty()) reader.read_file(path, Origin{});
  return finish(reader, path.empty() ? "(defaults)" : "'" + path + "'", options, diagnostics);
}

LoadedConfig load_config_text(const std::string& yaml, const std::string& name,
                              const LoadOptions& options) {
  std::vector<Diagnostic> diagnostics;
  TreeReader reader(diagnostics);
  reader.read_text(yaml, name, files::current_directory());
  return finish(reader, "'" + name + "'", options, diagnostics);
}

std::string render_config_yaml(const LoadedConfig& loaded, bool with_origins) {
  Config copy = loaded.config;
  std::ostringstream out;
  std::vector<std::string> open;  // the section path currently open
  for (const KeySpec& key : config_keys()) {
    std::vector<std::string> parts;
    std::stringstream split(key.path);
    for (std::string part; std::getline(split, part, '.');) parts.push_back(part);
    size_t common = 0;
    while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common]) {
      ++common;
    }
    open.resize(common);
    for (size_t i = common; i + 1 < parts.size(); ++i) {
      if (i == 0 && out.tellp() > 0) out << '\n';
      out << std::string(2 * i, ' ') << parts[i] << ":\n";
      open.push_back(parts[i]);
    }
    out << std::string(2 * (parts.size() - 1), ' ') << parts.back() << ": "
        << value_text(key, copy);
    auto it = loaded.origins.find(key.path);
    if (with_origins && it != loaded.origins.end()) out << "  # " << it->second.describe();
    out << '\n';
  }
  return out.str();
}

std::string render_config_help() {
  std::ostringstream out;
  std::string section;
  for (const KeySpec& key : config_keys()) {
    const std::string top = key.path.substr(0, key.path.find('.'));
    if (top != section) {
      section = top;
      out << (out.tellp() > 0 ? "\n" : "") << section << ": " << section_help(section) << '\n';
    }
    out << "  " << key.path << "  (" << key.type_name() << ", default " << key.default_text();
    const std::string allowed = key.allowed_text();
    if (!allowed.empty() && !std::holds_alternative<BoolSpec>(key.type)) {
      out << "; allowed " << allowed;
    }
    out << ")\n      " << key.help << '\n';
  }
  return out.str();
}

}  // namespace cca
