#include "sweep/sweep_spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>

#include "config/schema.h"
#include "util/files.h"
#include "util/format.h"
#include "util/strings.h"

namespace cca::sweep {
namespace {

const std::vector<std::string> kTopLevelKeys = {"base", "base_config", "set",   "runs",
                                                "grid", "out_dir",     "title", "tune"};

// The text --set would take for `node`: scalars as YAML reads them back, lists and maps in flow
// style.
std::string value_text(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "null";
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << node;
  return out.c_str();
}

// Folder names: no separators, nothing a shell or a file system treats specially.
bool valid_run_name(const std::string& name) {
  if (name.empty() || name[0] == '.' || name[0] == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string("._-=,+").find(c) != std::string::npos;
  });
}

class SpecReader {
 public:
  explicit SpecReader(std::string file) : file_(std::move(file)) {}

  Origin origin(const YAML::Node& node) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return Origin{file_, 0, 0};
    return Origin{file_, mark.line + 1, mark.column + 1};
  }
  void error(const Origin& where, const std::string& message) {
    diagnostics_.push_back(Diagnostic{where, message});
  }
  void error(const YAML::Node& node, const std::string& message) { error(origin(node), message); }
  std::vector<Diagnostic>& diagnostics() { return diagnostics_; }

  // One "key=value" per leaf of `map` (flat dotted keys and nested maps both work), checked for
  // duplicates and for run.dir, which the sweep sets itself. `leaf` may reject a value.
  void flatten(
      const YAML::Node& map, const std::string& prefix, std::set<std::string>& seen,
      const std::function<void(const std::string&, const YAML::Node&, const Origin&)>& leaf) {
    for (const auto& pair : map) {
      const YAML::Node key = pair.first;
      const YAML::Node value = pair.second;
      const std::string path = prefix.empty() ? key.Scalar() : prefix + "." + key.Scalar();
      if (value.IsMap()) {
        flatten(value, path, seen, leaf);
      } else if (!seen.insert(path).second) {
        error(key, "duplicate key '" + path + "'");
      } else if (path == "run.dir") {
        error(key, "run.dir is set by the sweep (out_dir/<run name>); leave it out");
      } else {
        leaf(path, value, origin(key));
      }
    }
  }

  std::vector<Override> overrides(const YAML::Node& map, const std::string& what) {
    std::vector<Override> out;
    if (!map || map.IsNull()) return out;
    if (!map.IsMap()) {
      error(map, what + " must be a mapping of config keys to values");
      return out;
    }
    std::set<std::string> seen;
    flatten(map, "", seen, [&](const std::string& path, const YAML::Node& value, const Origin& o) {
      out.push_back(Override{path + "=" + value_text(value), o});
    });
    return out;
  }

 private:
  std::string file_;
  std::vector<Diagnostic> diagnostics_;
};

struct Variant {
  std::string name;
  std::vector<Override> overrides;
};

std::vector<Variant> read_runs(SpecReader& reader, const YAML::Node& runs) {
  std::vector<Variant> out;
  if (!runs) return out;
  if (!runs.IsMap() || runs.size() == 0) {
    reader.error(
        runs, "runs: expects a mapping of run names to overlays (e.g. mha: {attention.kind: mha})");
    return out;
  }
  for (const auto& pair : runs) {
    const YAML::Node key = pair.first;
    out.push_back(
        Variant{key.Scalar(), reader.overrides(pair.second, "run '" + key.Scalar() + "'")});
  }
  return out;
}

// Every combination of the grid's values, the first key varying slowest. Points are named
// "<key>=<value>,..." with each key's last part (the full path where two keys share it).
std::vector<Variant> read_grid(SpecReader& reader, const YAML::Node& grid) {
  struct Axis {
    std::string path;
    Origin origin;
    std::vector<YAML::Node> values;
  };
  std::vector<Axis> axes;
  if (!grid.IsMap() || grid.size() == 0) {
    reader.error(grid, "grid: expects a mapping of config keys to lists of values");
    return {};
  }
  std::set<std::string> seen;
  reader.flatten(
      grid, "", seen, [&](const std::string& path, const YAML::Node& v, const Origin& o) {
        if (!v.IsSequence() || v.size() == 0) {
          reader.error(o,
                       "grid key '" + path + "' needs a non-empty list of values, e.g. [0, 1, 2]");
          return;
        }
        axes.push_back(Axis{path, o, {v.begin(), v.end()}});
      });
  std::vector<Variant> points = {Variant{}};
  for (const Axis& axis : axes) {
    std::string label = axis.path.substr(axis.path.rfind('.') + 1);
    for (const Axis& other : axes) {
      if (&other != &axis && other.path.substr(other.path.rfind('.') + 1) == label)
        label = axis.path;
    }
    std::vector<Variant> next;
    for (const Variant& point : points) {
      for (const YAML::Node& value : axis.values) {
        Variant v = point;
        const std::string text = value_text(value);
        v.name += (v.name.empty() ? "" : ",") + label + "=" + text;
        v.overrides.push_back(Override{axis.path + "=" + text, axis.origin});
        next.push_back(std::move(v));
      }
    }
    points = std::move(next);
  }
  return points;
}

void read_base(SpecReader& reader, const YAML::Node& root, const std::string& file,
               SweepSpec& spec) {
  const YAML::Node base = root["base"];
  const YAML::Node inline_base = root["base_config"];
  if (base && inline_base) {
    reader.error(inline_base, "give either base: FILE or base_config: {...}, not both");
  } else if (base) {
    if (!base.IsScalar() || base.Scalar().empty()) {
      reader.error(base, "base: expects the path of a config file (relative to the sweep file)");
      return;
    }
    const std::string& path = base.Scalar();
    spec.base_path = path[0] == '/' ? path : files::join(files::parent_path(file), path);
    if (!files::is_regular_file(spec.base_path)) {
      reader.error(base, "base config '" + spec.base_path + "' does not exist");
    }
  } else if (inline_base) {
    if (!inline_base.IsMap()) {
      reader.error(inline_base, "base_config: expects a mapping of config sections");
      return;
    }
    if (inline_base["include"]) {
      reader.error(inline_base["include"],
                   "base_config cannot include files; use base: FILE instead");
      return;
    }
    YAML::Emitter out;
    out << inline_base;
    spec.base_config = std::string(out.c_str()) + "\n";
    spec.base_overrides = reader.overrides(inline_base, "base_config");
  } else {
    reader.error(Origin{file, 0, 0}, "a sweep needs base: FILE or base_config: {...}");
  }
}

void check_names(SpecReader& reader, const SweepSpec& spec, const YAML::Node& where) {
  std::set<std::string> names;
  for (const SweepRun& run : spec.runs) {
    if (!valid_run_name(run.name)) {
      reader.error(where, "run name '" + run.name +
                              "' is not a plain folder name (letters, digits and . _ - = , +)");
    } else if (!names.insert(run.name).second) {
      reader.error(where, "two runs are named '" + run.name + "'");
    }
  }
}

std::vector<Override> cli_overrides_of(SpecReader& reader, const std::vector<std::string>& texts) {
  std::vector<Override> out;
  for (const std::string& text : texts) {
    const Origin origin{"--set " + text, 0, 0};
    if (text.substr(0, text.find('=')) == "run.dir") {
      reader.error(origin,
                   "run.dir is set by the sweep (out_dir/<run name>); change out_dir instead");
    }
    out.push_back(Override{text, origin});
  }
  return out;
}

void expand(SpecReader& reader, const YAML::Node& root, const std::vector<Override>& common,
            const std::vector<Override>& cli, const Origin& out_dir_origin, SweepSpec& spec) {
  std::vector<Variant> runs = read_runs(reader, root["runs"]);
  std::vector<Variant> grid =
      root["grid"] ? read_grid(reader, root["grid"]) : std::vector<Variant>{};
  if (!root["runs"] && !root["grid"]) {
    reader.error(Origin{spec.file, 0, 0},
                 "a sweep needs runs: (named overlays) or grid: (keys to vary)");
  }
  if (runs.empty()) runs.push_back(Variant{});
  if (grid.empty()) grid.push_back(Variant{});
  for (const Variant& r : runs) {
    for (const Variant& g : grid) {
      SweepRun run;
      run.name = r.name + (!r.name.empty() && !g.name.empty() ? "," : "") + g.name;
      run.dir = files::join(spec.out_dir, run.name);
      for (const auto* part : {&r.overrides, &g.overrides}) {
        for (const Override& o : *part) run.variant.push_back(o.text);
      }
      run.overrides = common;
      for (const auto* part : {&r.overrides, &g.overrides, &cli}) {
        run.overrides.insert(run.overrides.end(), part->begin(), part->end());
      }
      run.overrides.push_back(
          Override{"run.dir=" + value_text(YAML::Node(run.dir)), out_dir_origin});
      spec.runs.push_back(std::move(run));
    }
  }
}

// Loader diagnostics about --set overrides point back to where the sweep file wrote them.
std::vector<Diagnostic> relocate(std::vector<Diagnostic> diagnostics,
                                 const std::vector<Override>& overrides) {
  for (Diagnostic& d : diagnostics) {
    if (d.origin.line != 0 || d.origin.file.rfind("--set ", 0) != 0) continue;
    const std::string text = d.origin.file.substr(6);
    for (const Override& o : overrides) {
      if (o.text == text) d.origin = o.origin;
    }
  }
  return diagnostics;
}

// tune: a list of config keys (or one); the report compares each treatment at its best value.
void read_tune_keys(SpecReader& reader, const YAML::Node& node, SweepSpec& spec) {
  if (!node) {
    spec.tune_keys = {"optim.lr"};
    return;
  }
  if (!node.IsSequence() && !node.IsScalar() && !node.IsNull()) {
    reader.error(node, "tune: expects a list of config keys, e.g. [optim.lr]");
    return;
  }
  std::vector<YAML::Node> items;
  if (node.IsScalar()) items.push_back(node);
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) items.push_back(item);
  }
  for (const YAML::Node& item : items) {
    const std::string key = item.IsScalar() ? item.Scalar() : "";
    if (find_key(key) != nullptr) {
      spec.tune_keys.push_back(key);
      continue;
    }
    std::vector<std::string> known;
    for (const KeySpec& k : config_keys()) known.push_back(k.path);
    const std::string guess = did_you_mean(key, known);
    reader.error(item, "tune: '" + key + "' is not a config key" +
                           (guess.empty() ? "" : " (did you mean '" + guess + "'?)"));
  }
}

}  // namespace

std::vector<std::string> SweepRun::override_texts() const {
  std::vector<std::string> texts;
  for (const Override& o : overrides) texts.push_back(o.text);
  return texts;
}

SweepSpec parse_sweep_spec(const std::string& yaml, const std::string& name,
                           const std::vector<std::string>& cli_overrides) {
  SpecReader reader(name);
  SweepSpec spec;
  spec.file = name;
  YAML::Node loaded;
  try {
    loaded = YAML::Load(yaml);
  } catch (const YAML::ParserException& e) {
    reader.error(Origin{name, e.mark.line + 1, e.mark.column + 1}, "YAML syntax error: " + e.msg);
    throw ConfigError("sweep '" + name + "'", std::move(reader.diagnostics()));
  }
  const YAML::Node& root = loaded;  // const: a non-const operator[] would add missing keys
  if (!root.IsMap()) {
    reader.error(root, "a sweep file is a mapping with base:, set:, runs: or grid:, and out_dir:");
    throw ConfigError("sweep '" + name + "'", std::move(reader.diagnostics()));
  }
  for (const auto& pair : root) {
    const std::string key = pair.first.Scalar();
    if (std::find(kTopLevelKeys.begin(), kTopLevelKeys.end(), key) != kTopLevelKeys.end()) continue;
    const std::string guess = did_you_mean(key, kTopLevelKeys);
    reader.error(pair.first, "unknown sweep key '" + key + "'" +
                                 (guess.empty() ? "" : " (did you mean '" + guess + "'?)") +
                                 "; expected " + join(kTopLevelKeys, ", "));
  }
  read_base(reader, root, name, spec);
  const std::vector<Override> common = reader.overrides(root["set"], "set");
  const std::string stem = files::file_name(name).substr(0, files::file_name(name).rfind('.'));
  spec.out_dir =
      root["out_dir"] && root["out_dir"].IsScalar() ? root["out_dir"].Scalar() : "runs/" + stem;
  spec.title = root["title"] && root["title"].IsScalar() ? root["title"].Scalar() : stem;
  if (spec.out_dir.empty()) reader.error(root["out_dir"], "out_dir: expects a folder path");
  read_tune_keys(reader, root["tune"], spec);
  const Origin out_dir_origin =
      root["out_dir"] ? reader.origin(root["out_dir"]) : Origin{name, 0, 0};
  expand(reader, root, common, cli_overrides_of(reader, cli_overrides), out_dir_origin, spec);
  check_names(reader, spec, root["runs"] ? root["runs"] : (root["grid"] ? root["grid"] : root));
  if (!reader.diagnostics().empty()) {
    throw ConfigError("sweep '" + name + "'", std::move(reader.diagnostics()));
  }
  return spec;
}

SweepSpec read_sweep_spec(const std::string& path, const std::vector<std::string>& cli_overrides) {
  if (!files::is_regular_file(path)) throw Error("sweep file '" + path + "' does not exist");
  return parse_sweep_spec(files::read_file(path, "sweep file"), path, cli_overrides);
}

std::vector<SweepRun> select_runs(const SweepSpec& spec, const std::vector<std::string>& only) {
  std::vector<std::string> names;
  for (const SweepRun& run : spec.runs) names.push_back(run.name);
  for (const std::string& wanted : only) {
    if (std::find(names.begin(), names.end(), wanted) != names.end()) continue;
    const std::string guess = did_you_mean(wanted, names);
    throw Error("--only " + wanted + ": sweep '" + spec.file + "' has no run of that name" +
                (guess.empty() ? "" : " (did you mean '" + guess + "'?)") +
                "; its runs: " + join(names, ", "));
  }
  std::vector<SweepRun> out;
  for (const SweepRun& run : spec.runs) {
    if (only.empty() || std::find(only.begin(), only.end(), run.name) != only.end())
      out.push_back(run);
  }
  return out;
}

LoadedConfig load_run(const SweepSpec& spec, const SweepRun& run, int world_size) {
  LoadOptions options;
  options.world_size = world_size;
  // An inline base_config is loaded as overrides in front of the run's own, so problems in it
  // point at the sweep file's lines too.
  std::vector<Override> all = spec.base_overrides;
  all.insert(all.end(), run.overrides.begin(), run.overrides.end());
  for (const Override& o : all) options.overrides.push_back(o.text);
  try {
    return load_config(spec.base_path, options);
  } catch (const ConfigError& e) {
    throw ConfigError("sweep '" + spec.file + "', run '" + run.name + "'",
                      relocate(e.diagnostics(), all));
  }
}

std::vector<LoadedConfig> load_all(const SweepSpec& spec, const std::vector<SweepRun>& runs,
                                   int world_size) {
  std::vector<LoadedConfig> configs;
  // Each distinct problem once, with the runs it affects (a bad `set:` key breaks every run).
  std::vector<std::pair<Diagnostic, std::vector<std::string>>> problems;
  for (const SweepRun& run : runs) {
    try {
      configs.push_back(load_run(spec, run, world_size));
    } catch (const ConfigError& e) {
      for (const Diagnostic& d : e.diagnostics()) {
        auto same = std::find_if(problems.begin(), problems.end(), [&](const auto& p) {
          return p.first.message == d.message && p.first.origin.describe() == d.origin.describe();
        });
        if (same == problems.end()) same = problems.insert(problems.end(), {d, {}});
        same->second.push_back("'" + run.name + "'");
      }
    }
  }
  if (problems.empty()) return configs;
  std::vector<Diagnostic> diagnostics;
  for (auto& [d, names] : problems) {
    const std::string which = names.size() == runs.size() && runs.size() > 1
                                  ? "every run"
                                  : (names.size() == 1 ? "run " : "runs ") + join(names, ", ");
    diagnostics.push_back(Diagnostic{d.origin, d.message + " [" + which + "]"});
  }
  throw ConfigError("sweep '" + spec.file + "'", std::move(diagnostics));
}

}  // namespace cca::sweep
