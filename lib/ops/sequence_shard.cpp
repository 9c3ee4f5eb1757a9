#include "ops/sequence_shard.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "util/error.h"
#include "util/format.h"

namespace cca {
namespace {

// all_gather's backward: the reduce-scatter of the gathered tensor's gradient. Every rank must
// take part even when nothing on it used the gathered tensor (an undefined gradient: zeros).
class GatherBackward : public torch::autograd::Node {
 public:
  GatherBackward(std::shared_ptr<SequenceGroup> group, const at::Tensor& gathered)
      : group_(std::move(group)), sizes_(gathered.sizes().vec()), options_(gathered.options()) {}
  torch::autograd::variable_list apply(torch::autograd::variable_list&& grads) override {
    const at::Tensor grad =
        grads[0].defined() ? grads[0].contiguous() : at::zeros(sizes_, options_);
    return {group_->reduce_scatter(grad)};
  }
  std::string name() const override { return "SequenceGroupGatherBackward"; }

 private:
  std::shared_ptr<SequenceGroup> group_;
  std::vector<int64_t> sizes_;
  at::TensorOptions options_;
};

// The `width` tokens before chunk `chunk`'s first, from `tails` [N, 2, B, width, C] (every rank's
// last `width` tokens of each of its chunks): zeros for the sequence's first chunk (and for every
// chunk when `exchange` is off). Every rank builds the same autograd graph — a slice of `tails`
// times a 0/1 factor — so backward runs the group's reduce-scatters in the same order on every
// rank: a rank whose graph lacked the slice could reach another gather's backward first.
at::Tensor halo_of(const at::Tensor& tails, int64_t chunk, int group_size, bool exchange) {
  const ChunkOwner previous = chunk_owner(std::max<int64_t>(chunk - 1, 0), group_size);
  const double keep = exchange && chunk > 0 ? 1.0 : 0.0;
  return tails[previous.rank][previous.slot] * keep;
}

}  // namespace

at::Tensor gather_from_group(const std::shared_ptr<SequenceGroup>& group, const at::Tensor& mine) {
  const at::Tensor input = mine.contiguous();
  at::Tensor gathered;
  {
    at::NoGradGuard no_grad;
    gathered = group->all_gather(input.detach());
  }
  if (at::GradMode::is_enabled() && input.requires_grad()) {
    auto node = std::shared_ptr<GatherBackward>(new GatherBackward(group, gathered),
                                                torch::autograd::deleteNode);
    node->set_next_edges(torch::autograd::collect_next_edges(input));
    torch::autograd::set_history(gathered, node);
  }
  return gathered;
}

ChunkOwner chunk_owner(int64_t chunk, int group_size) {
  if (chunk < group_size) return {static_cast<int>(chunk), 0};
  return {static_cast<int>(2 * group_size - 1 - chunk), 1};
}

std::shared_ptr<const SequenceShard> make_sequence_shard(std::shared_ptr<SequenceGroup> group,
                                                         const at::Tensor& global_ids,
                                                         const at::Tensor& global_positions) {
  const int n = group->size(), r = group->rank();
  const int64_t S = global_ids.size(1);
  if (S % (2 * n) != 0) {
    throw Error(format(
        "distributed.context_parallel {}: a sequence of {} tokens does not split into {} equal "
        "chunks (the sequence length must be a multiple of 2 x context_parallel)",
        n, S, 2 * n));
  }
  auto shard = std::make_shared<SequenceShard>();
  shard->group = std::move(group);
  shard->sequence_length = S;
  shard->chunk_length = S / (2 * n);
  shard->chunks = {r, 2 * n - 1 - r};
  const auto options = at::TensorOptions().dtype(at::kLong).device(global_ids.device());
  const int64_t L = shard->chunk_length;
  std::vector<at::Tensor> per_rank;
  for (int rank = 0; rank < n; ++rank) {
    per_rank.push_back(at::cat({at::arange(rank * L, (rank + 1) * L, options),
                                at::arange((2 * n - 1 - rank) * L, (2 * n - rank) * L, options)}));
  }
  shard->token_index = per_rank[r];
  shard->gathered_index = at::cat(per_rank);
  shard->global_ids = global_ids;
  shard->global_positions = global_positions;
  return shard;
}

at::Tensor shard_tokens(const at::Tensor& x, const SequenceShard& shard) {
  const int64_t L = shard.chunk_length;
  return at::cat({x.narrow(1, shard.chunks[0] * L, L), x.narrow(1, shard.chunks[1] * L, L)}, 1);
}

at::Tensor mix_with_halo(
    const at::Tensor& x, int64_t width, const SequenceShard& shard,
    const std::function<at::Tensor(const at::Tensor&, const at::Tensor&)>& mix) {
  const int64_t L = shard.chunk_length;
  if (width > L) {
    throw Error(format(
        "context parallelism: a causal mix reads {} tokens back (CCA's convolutions or value "
        "shift), more than a chunk of {} tokens (seq_len / (2 x distributed.context_parallel)); "
        "use a longer train.seq_len or a smaller distributed.context_parallel",
        width, L));
  }
  std::vector<at::Tensor> chunks = {x.narrow(1, 0, L), x.narrow(1, L, L)};
  at::Tensor tails;
  if (width > 0) {
    // One exchange for both chunks: [2, B, width, C] from each rank.
    const at::Tensor mine =
        at::stack({chunks[0].narrow(1, L - width, width), chunks[1].narrow(1, L - width, width)});
    tails = gather_from_group(shard.group, mine);
  }
  std::vector<at::Tensor> outputs;
  for (int slot = 0; slot < 2; ++slot) {
    const int64_t start = shard.chunks[slot] * L;
    at::Tensor positions = shard.global_positions.narrow(1, start, L);
    at::Tensor input = chunks[slot];
    if (width > 0) {
      const at::Tensor halo =
          halo_of(tails, shard.chunks[slot], shard.group->size(), shard.exchange_halo);
      input = at::cat({halo, input}, 1);
      // Before the sequence the halo is zeros that no token reads: a row's first token is at
      // position 0 of its document, and a token reads j back only from position j on.
      const at::Tensor halo_positions =
          start == 0 ? at::zeros_like(positions.narrow(1, 0, width))
                     : shard.global_positions.narrow(1, start - width, width);
      positions = at::cat({halo_positions, positions}, 1);
    }
    outputs.push_back(mix(input, positions).narrow(1, width, L));
  }
  return at::cat(outputs, 1);
}

}  // namespace cca
