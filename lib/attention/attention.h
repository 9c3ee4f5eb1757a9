// The interface every attention variant's module implements. Modules live one per file (mha.cpp,
// mla.cpp, cca.cpp, ...) beside their variant's descriptor (lib/config/variants/), and are created
// through make_attention (registry.cpp) from the list in lib/config/variants/list.h.
#pragma once

#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "attention/core.h"
#include "config/geometry.h"
#include "ops/documents.h"
#include "ops/init.h"
#include "ops/rope.h"

namespace cca {

// Settings besides the geometry that attention layers need.
struct AttentionOptions {
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  CoreBackend core = CoreBackend::automatic;
  double norm_eps = 1e-5;
  double init_std = 0.02;         // projections into the attention
  double output_init_std = 0.02;  // the output projection (depth-scaled when configured)
};

// The softmax scale of q·k over `qk_dim` dims: 1/√qk_dim, times YaRN's logit multiplier when the
// rotary frequencies are YaRN-scaled (on top of any temperature a variant learns, as CCA's τ).
inline double attention_scale(int64_t qk_dim, const AttentionOptions& options) {
  return options.rope_scaling.logit_multiplier() / std::sqrt(static_cast<double>(qk_dim));
}

// One layer's decode state for a batch of sequences. Each variant extends it.
class AttentionCache {
 public:
  virtual ~AttentionCache() = default;
  int64_t length = 0;  // tokens already seen
  // Bytes of the tensors held: the growing KV cache plus any constant state.
  virtual int64_t bytes() const = 0;
};

class Attention : public torch::nn::Module {
 public:
  // x: [B, S, E] -> [B, S, E]. Without a cache x is a whole causal sequence starting at
  // position 0. With one, x continues the cached sequence (a prefill chunk or one decode step)
  // and the cache is extended; the outputs equal those of one pass over the whole sequence.
  // With `documents` (packed training sequences, no cache) every token attends, and CCA's convs
  // and value shift read, only inside its own document: each document's outputs equal those of
  // the document alone (at positions from 0 when documents->reset_positions).
  virtual at::Tensor forward(const at::Tensor& x, AttentionCache* cache = nullptr,
                             const Documents* documents = nullptr) = 0;
  virtual std::unique_ptr<AttentionCache> new_cache() const = 0;
  // Per-head values worth watching in training logs, by name (CCA: "cca_temp", the key
  // temperature as the multiplier it applies). The trainer logs each name's min, mean and max
  // over all layers; most variants have none.
  virtual std::vector<std::pair<std::string, at::Tensor>> logged_values() const { return {}; }
};

// Throws cca::Error when a forward is given both documents and a cache: documents describe whole
// packed training sequences, and decode never packs.
void check_documents_without_cache(const Documents* documents, const AttentionCache* cache);

// Creates the module of the variant named by geometry.kind; throws cca::Error for an unknown kind.
std::shared_ptr<Attention> make_attention(const AttentionGeometry& geometry,
                                          const AttentionOptions& options);

}  // namespace cca
