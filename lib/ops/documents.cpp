#include "ops/documents.h"

#include "util/error.h"

namespace cca {

Documents find_documents(const at::Tensor& tokens, const DocumentSeparator& separator,
                         bool reset_positions, const at::Device& device) {
  TORCH_CHECK(tokens.dim() == 2 && !tokens.is_cuda(), "find_documents expects CPU tokens [B, S]");
  if (separator.token < 0) throw Error("find_documents: no separator token id");
  const int64_t B = tokens.size(0), S = tokens.size(1);
  const auto long_options = at::TensorOptions().dtype(at::kLong);
  const at::Tensor is_separator = tokens.eq(separator.token);
  // A document starts at a BOS, or right after an EOS; every row starts one at token 0.
  at::Tensor starts = at::zeros({B, S}, at::TensorOptions().dtype(at::kBool));
  if (separator.opens_document) {
    starts.copy_(is_separator);
  } else if (S > 1) {
    starts.narrow(1, 1, S - 1).copy_(is_separator.narrow(1, 0, S - 1));
  }
  starts.select(1, 0).fill_(true);

  const at::Tensor flat_starts = starts.reshape({-1});
  const at::Tensor ids = flat_starts.to(at::kLong).cumsum(0).sub(1).view({B, S});
  const at::Tensor index = at::arange(S, long_options).expand({B, S});
  const at::Tensor start_index = std::get<0>(at::where(starts, index, 0).cummax(1));
  const at::Tensor positions = index - start_index;

  const at::Tensor start_offsets = flat_starts.nonzero().squeeze(1);
  const at::Tensor cu_seqlens = at::cat({start_offsets, at::full({1}, B * S, long_options)});
  const int64_t max_length = cu_seqlens.diff().max().item<int64_t>();

  // From pinned memory, so the copies do not wait for the work already queued on the device.
  const auto place = [&device](const at::Tensor& t) {
    return device.is_cuda() ? t.contiguous().pin_memory().to(device, /*non_blocking=*/true) : t;
  };
  Documents out;
  out.ids = place(ids);
  out.positions = place(positions);
  out.cu_seqlens = place(cu_seqlens.to(at::kInt));
  out.max_length = max_length;
  out.reset_positions = reset_positions;
  return out;
}

Documents shard_documents(const Documents* global, int64_t batch, int64_t length,
                          std::shared_ptr<SequenceGroup> group, const at::Device& device) {
  at::Tensor ids, positions;
  if (global != nullptr) {
    ids = global->ids;
    positions = global->positions;
  } else {
    const auto options = at::TensorOptions().dtype(at::kLong).device(device);
    ids = at::arange(batch, options).unsqueeze(1).expand({batch, length});
    positions = at::arange(length, options).unsqueeze(0).expand({batch, length});
  }
  Documents out;
  out.shard = make_sequence_shard(std::move(group), ids, positions);
  out.ids = ids.index_select(1, out.shard->token_index);
  out.positions = positions.index_select(1, out.shard->token_index);
  out.reset_positions = global != nullptr && global->reset_positions;
  return out;
}

at::Tensor document_mask(const Documents& documents, int64_t window) {
  const at::Tensor& ids = documents.ids;
  const at::Tensor& pos = documents.positions;
  const at::Tensor same = ids.unsqueeze(2).eq(ids.unsqueeze(1));  // [B, Sq, Sk]
  // Inside one document the positions count tokens, so they order queries and keys.
  const at::Tensor distance = pos.unsqueeze(2) - pos.unsqueeze(1);
  at::Tensor visible = same.logical_and(distance.ge(0));
  if (window > 0) visible = visible.logical_and(distance.lt(window));
  return visible.unsqueeze(1);
}

at::Tensor rotate(const Rotary& rotary, const at::Tensor& x, int64_t offset,
                  const Documents* documents) {
  if (documents != nullptr && documents->shard) {
    const SequenceShard& shard = *documents->shard;
    const at::Tensor& positions =
        documents->reset_positions
            ? documents->positions
            : shard.token_index.unsqueeze(0).expand({x.size(0), shard.token_index.size(0)});
    return rotary.apply(x, positions, shard.sequence_length);
  }
  if (documents != nullptr && documents->reset_positions)
    return rotary.apply(x, documents->positions);
  return rotary.apply(x, offset);
}

}  // namespace cca
