// Activation checkpointing (train.activation_checkpointing): a block's forward runs without
// keeping its activations, and its backward runs the block again, with gradients, to get them.
// Costs one more forward per block (≈ a third more compute) and saves the block's activations —
// what lets a longer sequence or a bigger micro-batch fit.
#pragma once

#include <ATen/ATen.h>

namespace cca {

class BlockImpl;
struct MoeLosses;

// block(x) with the block's activations recomputed in backward. The MoE losses (when the block
// has an MoE layer) are added into `losses` as usual. Autocast's state at the call is restored
// for the recomputation, which runs on the autograd engine's thread.
at::Tensor recomputed_block(BlockImpl& block, const at::Tensor& x, MoeLosses& losses);

// True while a block is being recomputed: state updates that must happen once per forward pass
// (MoE load counts) skip the second pass.
bool recomputing_activations();

}  // namespace cca
