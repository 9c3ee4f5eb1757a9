// CCA's causal conv stack on q‖k as modules: a depthwise conv over every channel, then (convs 2) a
// grouped conv with one group per head, registered on the owning layer as "conv_qk" (PyTorch's
// ModuleList layout of [HF], so checkpoints name them conv_qk.0 / conv_qk.1). Shared by CCA's
// latent heads (cca.cpp) and MHA/GQA's own heads with attention.mha.convs (mha.cpp); the math
// that runs them is in cca_reference.h.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>

#include <cstdint>

#include "attention/cca_reference.h"

namespace cca {

class QkConvModules {
 public:
  QkConvModules() = default;
  // convs 0 registers nothing; `heads` is the number of groups of the grouped conv.
  QkConvModules(torch::nn::Module& owner, int64_t convs, int64_t channels, int64_t heads,
                int64_t kernel_0, int64_t kernel_1);

  // Undefined tensors for the convs that are absent.
  CcaConvWeights weights() const;

 private:
  torch::nn::ModuleList list_{nullptr};
  torch::nn::Conv1d depthwise_{nullptr}, grouped_{nullptr};
};

}  // namespace cca
