// The numbers a user should see before a run starts (and from --dry-run).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/accounting.h"
#include "config/attention_variant.h"
#include "config/config.h"
#include "config/geometry.h"

namespace cca {

struct DerivedValues {
  AttentionGeometry attention;
  ModelCounts counts;
  int64_t ffn_hidden = 0;
  int64_t expert_hidden = 0;
  int64_t n_layers = 0;
  int64_t moe_layers = 0;
  double train_flops_per_token = 0;
  int64_t kv_elements_per_token_per_layer = 0;
  int64_t decode_state_elements_per_layer = 0;
  int64_t kv_bytes_per_token_per_layer = 0;  // bf16
  int64_t kv_bytes_per_sequence = 0;         // bf16, all layers, train.seq_len tokens + state
  int64_t world_size = 1;
  int64_t context_parallel = 1;  // distributed.context_parallel: ranks per sequence
  int64_t sequences_per_step = 0;
  int64_t tokens_per_step = 0;
  std::string optimizer_kind = "adamw";  // optim.kind
};

DerivedValues derive_values(const Config& config, int world_size);
// Human-readable lines, one fact each.
std::vector<std::string> describe_derived(const DerivedValues& derived);

}  // namespace cca
