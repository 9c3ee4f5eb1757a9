// Which parameters AdamW decays. Shared by AdamW's parameter groups and by ZeRO-1, which must
// walk the parameters in AdamW's group order to clip bit-identically.
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

}  // namespace cca
