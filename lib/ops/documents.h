// Documents inside packed training sequences (data.document_masking): which document each token
// belongs to and where it sits in it, derived once per batch from the separator token the
// dataset's manifest names. Attention modules read it to keep every token inside its own
// document (the attention core, CCA's convolutions and value shift) and, with reset_positions,
// to restart RoPE at every document.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>

#include "ops/rope.h"
#include "ops/sequence_shard.h"

namespace cca {

struct DocumentSeparator {
  int64_t token = -1;
  // true: the separator opens a document (a BOS before each); false: it closes one (an EOS
  // after each), so it belongs to the document it ends.
  bool opens_document = true;
};

struct Documents {
  // [B, S] int64: the document of each token, numbered over the whole batch row by row, so
  // equal ids mean the same document and the same row.
  at::Tensor ids;
  // [B, S] int64: each token's index inside its document (0 at a document's first token).
  at::Tensor positions;
  // [documents + 1] int32: where each document starts in the flattened [B·S] tokens, then B·S
  // (the cumulative lengths a variable-length attention kernel reads).
  at::Tensor cu_seqlens;
  int64_t max_length = 0;  // tokens of the longest document
  // RoPE uses `positions` instead of the index in the row.
  bool reset_positions = false;
  // Context parallelism (ops/sequence_shard.h): the tensors above describe this rank's tokens
  // only (ids and positions; no cu_seqlens), and the shard says where they sit in the sequence.
  std::shared_ptr<const SequenceShard> shard;
};

// The documents of `tokens` [B, S] (any integer dtype, on the CPU: the lengths must be known on
// the host), with the tensors placed on `device`. A row's first token always starts a document,
// whatever precedes it in the shard.
Documents find_documents(const at::Tensor& tokens, const DocumentSeparator& separator,
                         bool reset_positions, const at::Device& device);

// This rank's share of sequences [B, S] under context parallelism: `global` the documents of the
// whole sequences (null without document masking: each row is one document, positions 0..S-1),
// restricted to the rank's tokens, with the shard attached. The attention layers then take
// their document paths, which read other ranks' tokens through the shard.
Documents shard_documents(const Documents* global, int64_t batch, int64_t length,
                          std::shared_ptr<SequenceGroup> group, const at::Device& device);

// Boolean [B, 1, Sq, Sk] (Sq == Sk): true where query i may see key j inside its document,
// causally, and, when window > 0, at most window - 1 tokens back.
at::Tensor document_mask(const Documents& documents, int64_t window = 0);

// x [B, S, H, D] rotated at positions offset, offset + 1, ... or, when `documents` reset
// positions, at each token's position inside its document; under context parallelism at each
// token's position in the whole sequence (or its document).
at::Tensor rotate(const Rotary& rotary, const at::Tensor& x, int64_t offset,
                  const Documents* documents);

}  // namespace cca
