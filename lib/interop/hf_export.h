// `cca-train export --format hf`: a checkpoint as a folder that transformers'
// AutoModelForCausalLM.from_pretrained loads (docs/interop.md): config.json, the weights
// (sharded past --max-shard-size, with the index), generation_config.json, the tokenizer, and for
// the remote-code target our modeling files. Written into a staging folder and renamed into place,
// so a failure leaves nothing half-written. Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "interop/hf_target.h"
#include "interop/hf_weights.h"

namespace cca::interop {

struct HfExportRequest {
  std::string checkpoint;       // a checkpoint folder (model.safetensors + config.yaml)
  std::string out;              // the folder to write
  std::string target = "auto";  // auto | a target_name()
  std::string dtype = "fp32";   // fp32 | bf16
  uint64_t max_shard_bytes = kDefaultMaxShardBytes;
  bool force = false;     // replace a non-empty `out`
  std::string tokenizer;  // "" = the run's (data.tokenizer, else the shards' manifest)
};

struct HfExportResult {
  HfTarget target = HfTarget::remote_code;
  std::vector<std::string> fallback_reasons;  // why auto fell back to remote code
  size_t tensors = 0;
  std::vector<std::string> files;  // written into `out`
};

HfExportResult export_hf(const HfExportRequest& request);

// "5GB", "500MB", "2GiB", "1000" (bytes) -> bytes; throws cca::UsageError naming the value.
uint64_t parse_size(const std::string& text, const std::string& flag);

}  // namespace cca::interop
