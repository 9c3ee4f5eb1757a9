// Documents inside packed training sequences (data.document_masking): which document each token
// belongs to and where it sits in it, derived once per batch from the separator token the
// dataset's manifest names. Attention modules read it to keep every token inside its own
// document (the attention core, CCA's convolutions and value shift) and, with reset_positions,
// to restart RoPE at every document.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "ops/rope.h"

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
};

// The documents of `tokens` [B, S] (any integer dtype, on the CPU: the lengths must be known on
// the host), with the tensors placed on `device`. A row's first token always starts a document,
// whatever precedes it in the shard.
Documents find_documents(const at::Tensor& tokens, const DocumentSeparator& separator,
                         bool reset_positions, const at::Device& device);

// Boolean [B, 1, Sq, Sk] (Sq == Sk): true where query i may see key j inside its document,
// causally, and, when window > 0, at most window - 1 tokens back.
at::Tensor document_mask(const Documents& documents, int64_t window = 0);

// x [B, S, H, D] rotated at positions offset, offset + 1, ... or, when `documents` reset
// positions, at each token's position inside its document.
at::Tensor rotate(const Rotary& rotary, const at::Tensor& x, int64_t offset,
                  const Documents* documents);

}  // namespace cca
