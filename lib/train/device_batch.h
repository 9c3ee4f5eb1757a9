// A host micro-batch on its way to the device, shared by the training step and evaluation.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>

#include "data/dataset.h"
#include "data/loader.h"
#include "ops/documents.h"

namespace cca {

// Host batch -> int64 tensors on the device. The staging buffer is pinned on CUDA so the copy is
// asynchronous (a pageable copy would synchronise the stream every micro-batch).
std::pair<at::Tensor, at::Tensor> to_device(const data::Batch& batch, const at::Device& device);

// Targets that count (>= 0; -1 marks padding).
int64_t count_valid_targets(const data::Batch& batch);

// The documents of a host batch's inputs (data.document_masking), placed on `device`.
Documents batch_documents(const data::Batch& batch, const DocumentSeparator& separator,
                          bool reset_positions, const at::Device& device);

// Context parallelism: this rank's tokens of every sequence of `batch` (its two chunks, as
// `shard` says), as a batch of sequences S / N long.
data::Batch shard_batch(const data::Batch& batch, const SequenceShard& shard);

// The separator token of the shards' manifest (its BOS or EOS id, as its `separator` says), for
// data.document_masking. Throws cca::Error naming the key and the manifest when the shards have
// no manifest or the manifest has no id for its separator.
DocumentSeparator document_separator(const data::ShardSet& shards);

}  // namespace cca
