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
// weights: {<source name>: <number >= 0>, ...}, seq_len: <optional>, tokens_per_step: keep|scale}.
// Cross-key rules (names, order, train.steps) are validate_data_stages'.
std::string parse_stage_list(const YAML::Node& node, std::vector<DataStage>& stages);

std::string render_source_list(const std::string& single, const std::vector<DataSource>& list,
                               SourceListKind kind);
std::string render_stage_list(const std::vector<DataStage>& stages);

// A stage's sequence length and micro-batch (tokens_per_step keep: train's micro_batch_size x
// seq_len over the stage's seq_len, rounded down; validate_data_sources refuses a remainder).
int64_t stage_seq_len(const DataStage& stage, const Config& config);
int64_t stage_micro_batch_size(const DataStage& stage, const Config& config);
// Tokens per optimizer step over all ranks while `stage` is in force.
int64_t stage_tokens_per_step(const DataStage& stage, const Config& config, int world_size);

// The step each of data.stages starts at. A start_tokens stage starts at the first step after
// which that many tokens were seen, counting each earlier stage at its own tokens per step.
std::vector<int64_t> stage_start_steps(const Config& config, int world_size);

// The cross-key rules of data.train, data.val and data.stages, one message per problem:
// duplicate names, stages naming unknown sources, stages out of order, overlapping or leaving a
// gap, starting at or after train.steps, a stage with every weight 0, a stage seq_len above
// model.max_seq_len or whose tokens per step cannot be kept, or train.cuda_graphs with a stage
// changing the sequence length.
std::vector<std::string> validate_data_sources(const Config& config, int world_size);

}  // namespace cca
