// Activation checkpointing: a layer's forward runs without keeping its activations, and its
// backward runs the layer again, with gradients, to get them. Costs one more forward per layer
// (≈ a third more compute) and saves the layer's activations — what lets a longer sequence or a
// bigger micro-batch fit. The model decides which layers (TransformerImpl: every block, with
// set_activation_checkpointing); layers that update state once per forward (MoE load counts) ask
// recomputing_activations() to skip the second pass.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace cca {

// A layer that can run under recomputed(): one input, its outputs as tensors (the first is the
// layer's output; more may follow, e.g. auxiliary losses, and gradients flow into all of them).
class RecomputableLayer {
 public:
  virtual std::vector<at::Tensor> recomputable_forward(const at::Tensor& x) = 0;

 protected:
  ~RecomputableLayer() = default;
};

// layer.recomputable_forward(x), with its activations recomputed in backward. `layer` must
// outlive the backward pass. Autocast's state and the fp8 mode (ops/fp8_linear.h) at the call
// are restored for the recomputation, which runs on the autograd engine's thread.
std::vector<at::Tensor> recomputed(RecomputableLayer& layer, const at::Tensor& x);

// True while a layer is being recomputed: state updates that must happen once per forward pass
// (MoE load counts) skip the second pass.
bool recomputing_activations();

}  // namespace cca
