// The tensor names and layouts of each Hugging Face target against ours, as data: every HF tensor
// is our tensors (or one expert's slice of them) stacked along dim 0. Fused projections (Phi3's
// qkv_proj and gate_up_proj) list several pieces; per-expert HF tensors take one slice of our
// stacked expert weights. The same table maps both ways (export and import). Torch-free.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "interop/hf_target.h"

namespace cca::interop {

struct TensorPiece {
  std::string ours;    // our tensor ("blocks.0.moe.expert_w1")
  int64_t slice = -1;  // index along our dim 0 (an expert), -1 = the whole tensor
};

struct TensorLink {
  std::string hf;                   // "model.layers.0.mlp.experts.3.gate_proj.weight"
  std::vector<TensorPiece> pieces;  // stacked along dim 0 in this order
};

struct TensorMap {
  std::vector<TensorLink> links;
  // Our tensors the target has no place for because they hold no information there: they must be
  // zero on export (checked) and are zero-filled on import (the MoE selection bias of a class
  // without aux-loss-free balancing).
  std::vector<std::string> zero_filled;
};

// The map for `target` and a model of this config. For remote_code every tensor keeps its own
// name, so the map is the identity over `our_names`.
TensorMap tensor_map(HfTarget target, const Config& config,
                     const std::vector<std::string>& our_names);

}  // namespace cca::interop
