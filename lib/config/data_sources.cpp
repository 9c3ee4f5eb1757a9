#include "config/data_sources.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>

#include "config/schema.h"
#include "util/format.h"

namespace cca {
namespace {

// Source names become metric keys (tokens/<name>, val_loss/<name>) and YAML keys of a stage's
// weights: plain words only.
bool valid_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

// "web" from "data/web", "data/web/train_*.bin" -> "train", "code.bin" -> "code".
std::string name_from_path(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  std::string last = trimmed.substr(trimmed.find_last_of('/') + 1);
  const size_t cut = last.find_first_of("*?[");
  if (cut != std::string::npos) last = last.substr(0, cut);
  if (last.size() > 4 && last.compare(last.size() - 4, 4, ".bin") == 0)
    last.resize(last.size() - 4);
  while (!last.empty() && (last.back() == '_' || last.back() == '-' || last.back() == '.')) {
    last.pop_back();
  }
  std::string out;
  for (char c : last) out += valid_name(std::string(1, c)) ? c : '_';
  return out;
}

std::string item_label(size_t index, const YAML::Node& item) {
  const YAML::Mark mark = item.Mark();
  if (mark.is_null()) return format("item {}", index + 1);
  return format("item {} (line {})", index + 1, mark.line + 1);
}

bool read_number(const YAML::Node& node, double& out) {
  if (!node.IsScalar() || node.Scalar().empty()) return false;
  char* end = nullptr;
  errno = 0;
  out = std::strtod(node.Scalar().c_str(), &end);
  return errno == 0 && *end == '\0' && std::isfinite(out);
}

bool read_count(const YAML::Node& node, int64_t& out) {
  double value = 0;
  if (!read_number(node, value) || value < 0 || value > 9e18 || value != std::floor(value)) {
    return false;
  }
  out = static_cast<int64_t>(value);
  return true;
}

// The keys of a list item's mapping, each checked against `allowed`.
std::string check_item_keys(const YAML::Node& item, const std::string& label,
                            const std::vector<std::string>& allowed) {
  if (!item.IsMap()) {
    std::string fields;
    for (const std::string& key : allowed) fields += (fields.empty() ? "" : ", ") + key;
    return label + ": expected a mapping with " + fields;
  }
  for (const auto& pair : item) {
    const std::string key = pair.first.Scalar();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string fields;
      for (const std::string& a : allowed) fields += (fields.empty() ? "" : ", ") + a;
      return format("{}: unknown field '{}' (allowed: {})", label, key, fields);
    }
  }
  return "";
}

std::string read_name(const YAML::Node& item, const std::string& label, const std::string& fallback,
                      std::string& out) {
  out = fallback;
  if (item["name"]) {
    if (!item["name"].IsScalar()) return label + ": name must be a word";
    out = item["name"].Scalar();
  }
  if (!valid_name(out)) {
    return format("{}: name '{}' is not a word of letters, digits, '_', '-' or '.' (at most 64)",
                  label, out);
  }
  return "";
}

std::string parse_source(const YAML::Node& item, const std::string& label, SourceListKind kind,
                         DataSource& out) {
  const bool train = kind == SourceListKind::train;
  std::string problem = check_item_keys(item, label,
                                        train ? std::vector<std::string>{"name", "path", "weight"}
                                              : std::vector<std::string>{"name", "path"});
  if (!problem.empty()) return problem;
  if (!item["path"] || !item["path"].IsScalar() || item["path"].Scalar().empty()) {
    return label + ": path is missing; name the source's shards (a file, folder or glob)";
  }
  out.path = item["path"].Scalar();
  problem = read_name(item, label, name_from_path(out.path), out.name);
  if (!problem.empty()) return problem;
  if (!train) return "";
  if (!item["weight"])
    return format("{} '{}': weight is missing; give a number > 0", label, out.name);
  if (!read_number(item["weight"], out.weight) || out.weight <= 0) {
    const std::string text = item["weight"].IsScalar() ? item["weight"].Scalar() : "a collection";
    return format("{} '{}': weight {} must be a number > 0", label, out.name, text);
  }
  return "";
}

// A stage's optional seq_len and tokens_per_step.
std::string parse_stage_length(const YAML::Node& item, const std::string& where, DataStage& out) {
  if (item["seq_len"] && (!read_count(item["seq_len"], out.seq_len) || out.seq_len < 1)) {
    return where + ": seq_len must be an integer >= 1 (the stage's tokens per sequence)";
  }
  if (!item["tokens_per_step"]) return "";
  const YAML::Node rule = item["tokens_per_step"];
  out.tokens_per_step = rule.IsScalar() ? rule.Scalar() : "a collection";
  if (out.tokens_per_step != "keep" && out.tokens_per_step != "scale") {
    return format(
        "{}: tokens_per_step {} is not allowed (keep: micro_batch_size x seq_len stays as in "
        "train; scale: micro_batch_size stays)",
        where, out.tokens_per_step);
  }
  return "";
}

std::string parse_stage(const YAML::Node& item, const std::string& label, size_t index,
                        DataStage& out) {
  std::string problem = check_item_keys(
      item, label, {"name", "start_step", "start_tokens", "weights", "seq_len", "tokens_per_step"});
  if (!problem.empty()) return problem;
  problem = read_name(item, label, format("stage{}", index + 1), out.name);
  if (!problem.empty()) return problem;
  const std::string where = format("{} '{}'", label, out.name);
  if (static_cast<bool>(item["start_step"]) == static_cast<bool>(item["start_tokens"])) {
    return where + ": give exactly one of start_step and start_tokens";
  }
  const bool by_step = static_cast<bool>(item["start_step"]);
  const YAML::Node start = by_step ? item["start_step"] : item["start_tokens"];
  int64_t& target = by_step ? out.start_step : out.start_tokens;
  if (!read_count(start, target)) {
    return format("{}: {} must be an integer >= 0", where, by_step ? "start_step" : "start_tokens");
  }
  const YAML::Node weights = item["weights"];
  if (!weights || !weights.IsMap() || weights.size() == 0) {
    return where + ": weights is missing; give {<source name>: <weight>, ...}";
  }
  for (const auto& pair : weights) {
    DataSource weight;
    weight.name = pair.first.Scalar();
    if (!read_number(pair.second, weight.weight) || weight.weight < 0) {
      return format("{}: weights.{} must be a number >= 0", where, weight.name);
    }
    out.weights.push_back(weight);
  }
  return parse_stage_length(item, where, out);
}

std::string unique_names_problem(const std::vector<DataSource>& list) {
  std::set<std::string> seen;
  for (const DataSource& source : list) {
    if (!seen.insert(source.name).second) {
      return format("two sources are named '{}'; give each a distinct name", source.name);
    }
  }
  return "";
}

// Every item of a list through `parse`, stopping at the first problem.
template <class Item, class Parse>
std::string parse_items(const YAML::Node& node, std::vector<Item>& out, Parse parse) {
  for (size_t i = 0; i < node.size(); ++i) {
    Item item;
    std::string problem = parse(node[i], i, item);
    if (!problem.empty()) return problem;
    out.push_back(std::move(item));
  }
  return "";
}

// A stage's seq_len against model.max_seq_len, its tokens per step rule and CUDA graphs.
std::vector<std::string> stage_length_problems(const Config& c, const DataStage& stage,
                                               const std::string& label) {
  std::vector<std::string> problems;
  const int64_t seq_len = stage_seq_len(stage, c);
  if (c.model.max_seq_len > 0 && seq_len > c.model.max_seq_len) {
    problems.push_back(format("{}: seq_len {} is above model.max_seq_len = {}", label, seq_len,
                              c.model.max_seq_len));
  }
  const int64_t tokens = c.train.micro_batch_size * c.train.seq_len;
  if (stage.tokens_per_step != "scale" && tokens % seq_len != 0) {
    problems.push_back(
        format("{}: tokens_per_step keep needs seq_len {} to divide train.micro_batch_size x "
               "train.seq_len = {} x {} = {}; pick such a seq_len or tokens_per_step: scale",
               label, seq_len, c.train.micro_batch_size, c.train.seq_len, tokens));
  }
  if (c.train.cuda_graphs && seq_len != c.train.seq_len) {
    problems.push_back(format(
        "{}: seq_len {} differs from train.seq_len = {}, and train.cuda_graphs captures one "
        "shape; set train.cuda_graphs: false for a run whose stages change the sequence length",
        label, seq_len, c.train.seq_len));
  }
  return problems;
}

}  // namespace

std::string parse_source_list(const YAML::Node& node, SourceListKind kind, std::string& single,
                              std::vector<DataSource>& list) {
  if (node.IsNull()) {
    single.clear();
    list.clear();
    return "";
  }
  if (node.IsScalar()) {
    single = node.Scalar();
    list.clear();
    return "";
  }
  if (!node.IsSequence() || node.size() == 0) {
    return "expects a path (file, folder or glob) or a non-empty list of sources";
  }
  std::vector<DataSource> parsed;
  std::string problem =
      parse_items(node, parsed, [&](const YAML::Node& item, size_t i, DataSource& out) {
        return parse_source(item, item_label(i, item), kind, out);
      });
  if (problem.empty()) problem = unique_names_problem(parsed);
  if (!problem.empty()) return problem;
  list = std::move(parsed);
  single = list.front().path;
  return "";
}

std::string parse_stage_list(const YAML::Node& node, std::vector<DataStage>& stages) {
  if (node.IsNull()) return stages.clear(), "";
  if (!node.IsSequence()) return "expects a list of stages ({start_step: N, weights: {...}})";
  std::vector<DataStage> parsed;
  const std::string problem =
      parse_items(node, parsed, [](const YAML::Node& item, size_t i, DataStage& out) {
        return parse_stage(item, item_label(i, item), i, out);
      });
  if (!problem.empty()) return problem;
  stages = std::move(parsed);
  return "";
}

std::string render_source_list(const std::string& single, const std::vector<DataSource>& list,
                               SourceListKind kind) {
  if (list.empty()) return yaml_quoted_text(single);
  std::string out = "[";
  for (const DataSource& source : list) {
    out += (out.size() > 1 ? ", " : "") +
           format("{{name: {}, path: {}", source.name, yaml_quoted_text(source.path));
    if (kind == SourceListKind::train) out += ", weight: " + yaml_number_text(source.weight);
    out += "}";
  }
  return out + "]";
}

std::string render_stage_list(const std::vector<DataStage>& stages) {
  std::string out = "[";
  for (const DataStage& stage : stages) {
    out += (out.size() > 1 ? ", " : "") + format("{{name: {}, ", stage.name);
    out += stage.start_step >= 0 ? format("start_step: {}", stage.start_step)
                                 : format("start_tokens: {}", stage.start_tokens);
    std::string weights;
    for (const DataSource& w : stage.weights) {
      weights += (weights.empty() ? "" : ", ") + w.name + ": " + yaml_number_text(w.weight);
    }
    out += ", weights: {" + weights + "}";
    if (stage.seq_len > 0) out += format(", seq_len: {}", stage.seq_len);
    if (!stage.tokens_per_step.empty()) out += ", tokens_per_step: " + stage.tokens_per_step;
    out += "}";
  }
  return out + "]";
}

int64_t stage_seq_len(const DataStage& stage, const Config& config) {
  return stage.seq_len > 0 ? stage.seq_len : config.train.seq_len;
}

int64_t stage_micro_batch_size(const DataStage& stage, const Config& config) {
  if (stage.tokens_per_step == "scale") return config.train.micro_batch_size;
  return config.train.micro_batch_size * config.train.seq_len / stage_seq_len(stage, config);
}

int64_t stage_tokens_per_step(const DataStage& stage, const Config& config, int world_size) {
  return stage_micro_batch_size(stage, config) * stage_seq_len(stage, config) *
         config.train.grad_accum * std::max(world_size, 1);
}

std::vector<int64_t> stage_start_steps(const Config& config, int world_size) {
  std::vector<int64_t> starts;
  int64_t tokens_at_previous = 0;  // tokens seen when the previous stage began
  for (size_t i = 0; i < config.data.stages.size(); ++i) {
    const DataStage& stage = config.data.stages[i];
    int64_t start = stage.start_step;
    if (start < 0 && i == 0) {
      const int64_t per_step =
          std::max<int64_t>(stage_tokens_per_step(stage, config, world_size), 1);
      start = (stage.start_tokens + per_step - 1) / per_step;
    } else if (start < 0) {
      const int64_t per_step = std::max<int64_t>(
          stage_tokens_per_step(config.data.stages[i - 1], config, world_size), 1);
      const int64_t left = std::max<int64_t>(stage.start_tokens - tokens_at_previous, 0);
      start = starts.back() + (left + per_step - 1) / per_step;
    }
    if (i > 0) {
      tokens_at_previous += std::max<int64_t>(start - starts.back(), 0) *
                            stage_tokens_per_step(config.data.stages[i - 1], config, world_size);
    }
    starts.push_back(start);
  }
  return starts;
}

std::vector<std::string> validate_data_sources(const Config& c, int world_size) {
  std::vector<std::string> problems;
  const std::vector<DataSource>& sources = c.data.train_sources;
  if (c.data.stages.empty()) return problems;
  if (sources.empty()) {
    problems.push_back(
        "data.stages needs data.train as a list of named sources (the stages' weights name "
        "them); data.train is one dataset");
    return problems;
  }
  std::string known;
  for (const DataSource& s : sources) known += (known.empty() ? "" : ", ") + s.name;
  const std::vector<int64_t> starts = stage_start_steps(c, world_size);
  int64_t previous_start = -1;
  for (size_t i = 0; i < c.data.stages.size(); ++i) {
    const DataStage& stage = c.data.stages[i];
    const std::string label = format("data.stages[{}] '{}'", i + 1, stage.name);
    const int64_t start = starts[i];
    for (const std::string& problem : stage_length_problems(c, stage, label)) {
      problems.push_back(problem);
    }
    if (i == 0 && start != 0) {
      problems.push_back(
          format("{} starts at step {}: the first stage must start at step 0 (a gap before it)",
                 label, start));
    }
    if (i > 0 && start <= previous_start) {
      problems.push_back(
          format("{} starts at step {}, not after the previous stage's start {} "
                 "(stages overlap; list them in order of their start)",
                 label, start, previous_start));
    }
    if (start >= c.train.steps && c.train.steps > 0) {
      problems.push_back(
          format("{} starts at step {}, at or after train.steps = {}: it would "
                 "never run",
                 label, start, c.train.steps));
    }
    previous_start = start;
    double total = 0;
    for (const DataSource& w : stage.weights) {
      const bool listed = std::any_of(sources.begin(), sources.end(),
                                      [&](const DataSource& s) { return s.name == w.name; });
      if (!listed) {
        problems.push_back(format("{}: weights name unknown source '{}' (data.train's sources: {})",
                                  label, w.name, known));
      }
      total += w.weight;
    }
    if (total <= 0) problems.push_back(label + ": every weight is 0; give one source a weight > 0");
  }
  return problems;
}

}  // namespace cca
