// The list-valued data keys: data.train and data.val as lists of named datasets, and
// data.stages (docs/data.md). The schema holds scalars; these three keys hold a small typed list
// each, parsed here from their YAML node and rendered back as one line of flow YAML, so
// --print-config, a checkpoint's config.yaml and `--set data.train=[{...}, ...]` read and write
// them like any other key.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "config/config.h"

namespace cca {

enum class SourceListKind { train, validation };

// data.train / data.val: a string (one dataset, as before) or a list of mappings
//   train: {path: <shards>, weight: <number > 0>, name: <optional>}
//   val:   {path: <shards>, name: <optional>}
// A missing name is taken from the path (its last part without extension or glob characters).
// Stores the string in `single` and the list in `list` (the other one emptied; with a list,
// `single` becomes the first source's path). Returns "" or what is wrong, naming the item and
// its line.
std::string parse_source_list(const YAML::Node& node, SourceListKind kind, std::string& single,
                              std::vector<DataSource>& list);
// data.stages: a list of {name: <optional>, start_step: N | start_tokens: N,
// weights: {<source name>: <number >= 0>, ...}}. Cross-key rules (names, order, train.steps) are
// validate_data_stages'.
std::string parse_stage_list(const YAML::Node& node, std::vector<DataStage>& stages);

std::string render_source_list(const std::string& single, const std::vector<DataSource>& list,
                               SourceListKind kind);
std::string render_stage_list(const std::vector<DataStage>& stages);

// The step a stage starts at for `tokens_per_step` tokens per optimizer step (all ranks).
int64_t stage_start_step(const DataStage& stage, int64_t tokens_per_step);

// The cross-key rules of data.train, data.val and data.stages, one message per problem:
// duplicate names, stages naming unknown sources, stages out of order, overlapping or leaving a
// gap, starting at or after train.steps, or a stage with every weight 0.
std::vector<std::string> validate_data_sources(const Config& config, int world_size);

}  // namespace cca
