// Which parameters AdamW decays and which Muon orthogonalises. Shared by the optimizers' groups,
// by their state layout and by ZeRO-1, which must walk the parameters in the optimizer's order to
// clip bit-identically.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "config/config.h"

namespace cca {

// Whether `name` (a model parameter path such as "blocks.0.ffn_norm.weight") takes weight decay:
// matrices do; norms, biases, scalars and per-head vectors (e.g. the CCA key temperature) only
// with optim.decay_norms_and_biases; the embedding and LM head only with optim.decay_embeddings.
bool takes_weight_decay(const std::string& name, const at::Tensor& parameter,
                        const OptimConfig& optim);

// Whether optim.kind muon orthogonalises `name`: the hidden weight matrices (attention and FFN
// projections, shared experts) and stacked expert matrices [experts, out, in] (each expert's
// matrix on its own). Not the embedding or LM head (a lookup table and a classifier, whose rows
// are not one linear map), vectors, biases, MoE routers (a small fp32 classifier), or CCA's
// convolution taps (3-dim [channels, in/groups, taps], not a stack of linear maps). The same
// split as ModelCounts::hidden_matrix_params (config/accounting.h), which --dry-run prints.
bool orthogonalised_by_muon(const std::string& name, const at::Tensor& parameter);

}  // namespace cca
