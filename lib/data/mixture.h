// Weighted mixtures of datasets and curriculum stages (docs/data.md): which source each sequence
// comes from, and where a mixture stands, for checkpoints. Torch-free.
//
// The schedule is deterministic: sequence after sequence, every rank takes the next window of the
// source furthest below its share of the current stage's tokens (ties: the first listed), so the
// proportions hold at every point of the run, not only on average. Each source keeps its own
// seeded window order (a LoaderState), and ranks stay disjoint within it as in a single dataset.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace cca::data {

// One dataset of a mixture.
struct MixtureSource {
  std::string name;
  std::shared_ptr<const ShardSet> shards;
};

// From `start_sequence` (sequences over all ranks) on, source i is drawn at weights[i].
struct MixtureStage {
  std::string name;
  int64_t start_sequence = 0;
  std::vector<double> weights;  // one per source, >= 0, not all 0
  int64_t seq_len = 0;          // tokens per sequence from this stage on; 0 = LoaderOptions'
  int64_t batch_size = 0;       // sequences per batch (per rank); 0 = LoaderOptions'
};

enum class OnExhausted { wrap, error };

struct MixtureOptions {
  std::vector<MixtureStage> stages;  // in order, the first starting at 0
  OnExhausted on_exhausted = OnExhausted::wrap;
};

// The stage in force at `sequences` (the last one starting at or before it).
int64_t stage_at(const std::vector<MixtureStage>& stages, int64_t sequences);

// The source the next sequence comes from: the one furthest below its share of the stage's
// tokens so far (`stage_tokens`: each source's tokens since the stage began), the first listed on a
// tie. Sources of weight 0 are never chosen.
size_t pick_source(const MixtureStage& stage, const std::vector<int64_t>& stage_tokens);

// Throws cca::Error when two sources' shards were not made with the same tokenizer: vocabulary
// size, BOS/EOS ids, separator or tokenizer checksum of their manifests, or the vocabulary
// recorded in their shard headers; the message names both sources and the field.
void check_same_tokenizer(const std::vector<MixtureSource>& sources, const std::string& key);

}  // namespace cca::data
