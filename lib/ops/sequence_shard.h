// Context parallelism inside the model (distributed.context_parallel): one sequence split over the
// N ranks of a context group, each rank holding two chunks of S / 2N tokens (chunk r and chunk
// 2N-1-r of the 2N, so every rank gets as much causal attention work as any other). The model
// stays single-device code: the trainer hands every attention layer a Documents whose `shard`
// says which tokens this rank holds, and the few places that read other tokens — the attention
// core's keys and values, CCA's convolutions and value shift (a halo of the previous chunk's
// last tokens), RoPE's positions and the MoE router's token fractions (moe/moe.h) — consult
// it. The collectives come through SequenceGroup, which lib/dist implements over c10d (Gloo on
// the CPU, NCCL on CUDA).
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>

namespace cca {

// The ranks that share one sequence. Collectives block until every rank of the group called
// them, so every rank must call them in the same order (the model's forward and backward do).
class SequenceGroup {
 public:
  virtual ~SequenceGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Every rank's `mine` (one shape on every rank), stacked along a new dim 0: [size, ...].
  virtual at::Tensor all_gather(const at::Tensor& mine) = 0;
  // `full` [size, ...] summed over the ranks; returns this rank's slice [...].
  virtual at::Tensor reduce_scatter(const at::Tensor& full) = 0;
};

// all_gather under autograd: the gradient of the gathered tensor is summed over the ranks and
// each rank keeps its own slice (reduce-scatter), so a key or value read by another rank's
// queries gets that rank's contribution to its gradient.
at::Tensor gather_from_group(const std::shared_ptr<SequenceGroup>& group, const at::Tensor& mine);

// Which tokens of the global sequence this rank holds, and the whole sequence's documents.
struct SequenceShard {
  std::shared_ptr<SequenceGroup> group;
  int64_t sequence_length = 0;  // S, the whole sequence
  int64_t chunk_length = 0;     // S / 2N
  // The global chunk indices of this rank's two chunks, in the order its tokens hold them.
  std::array<int64_t, 2> chunks{};
  at::Tensor token_index;       // [S / N] int64: the global index of each of this rank's tokens
  at::Tensor gathered_index;    // [S] int64: the global index of each token all_gather returns
  at::Tensor global_ids;        // [B, S] document of every token of the sequence
  at::Tensor global_positions;  // [B, S] each token's index inside its document
  // Tests turn the halo off (zeros instead of the previous chunk's tokens) to show that the
  // exactness tests catch a missing exchange; training never does.
  bool exchange_halo = true;
  // Likewise for MoE layers (moe/moe.h): off, each rank's Switch loss takes the token fractions
  // of its own shard instead of the whole sequences'; training never turns it off.
  bool reduce_expert_counts = true;
};

// Chunk `chunk` (of 2N) is held by this rank of the group, as its first (0) or second (1) chunk.
struct ChunkOwner {
  int rank = 0;
  int slot = 0;
};
ChunkOwner chunk_owner(int64_t chunk, int group_size);

// The shard of rank `rank` of `size` for sequences of `length` tokens whose documents are
// `global_ids` / `global_positions` [B, length] (every row one document when masking is off:
// ids = row, positions = 0, 1, ...). Throws cca::Error unless length is a multiple of 2·size.
std::shared_ptr<const SequenceShard> make_sequence_shard(std::shared_ptr<SequenceGroup> group,
                                                         const at::Tensor& global_ids,
                                                         const at::Tensor& global_positions);

// This rank's tokens of x [B, S, ...] (global order): its two chunks, concatenated.
at::Tensor shard_tokens(const at::Tensor& x, const SequenceShard& shard);

// A causal token mix `mix(x, positions)` (x [B, T, C], positions [B, T] inside documents;
// output [B, T, C']) that reads at most `width` tokens back, applied to this rank's tokens
// [B, S / N, C] exactly as to the whole sequence: each chunk is mixed with the `width` tokens
// before it in front (the halo: exchanged with the rank holding the previous chunk, with
// autograd; zeros before the sequence) and the halo's outputs dropped. Throws cca::Error when
// width exceeds a chunk.
at::Tensor mix_with_halo(
    const at::Tensor& x, int64_t width, const SequenceShard& shard,
    const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& mix);

}  // namespace cca
