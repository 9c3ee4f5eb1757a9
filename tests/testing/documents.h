// Packed sequences of known documents for the document-masking tests: tokens with a separator
// at each document's start, and where each document lies.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "ops/documents.h"

namespace cca::testing {

constexpr int64_t kTestSeparator = 1;

struct DocumentSpan {
  int64_t row, start, length;
};

// Rows of documents with these lengths, each opened by kTestSeparator; other tokens are drawn
// from 2 .. vocab - 1. All rows must add up to the same length.
struct PackedDocuments {
  at::Tensor tokens;  // [B, S] int64 on the CPU
  std::vector<DocumentSpan> spans;
};

inline PackedDocuments pack_documents(const std::vector<std::vector<int64_t>>& rows,
                                      int64_t vocab) {
  PackedDocuments out;
  int64_t seq = 0;
  for (int64_t length : rows.front()) seq += length;
  out.tokens = at::randint(2, vocab, {static_cast<int64_t>(rows.size()), seq}, at::kLong);
  for (size_t r = 0; r < rows.size(); ++r) {
    int64_t start = 0;
    for (int64_t length : rows[r]) {
      out.tokens[static_cast<int64_t>(r)][start] = kTestSeparator;
      out.spans.push_back({static_cast<int64_t>(r), start, length});
      start += length;
    }
    EXPECT_EQ(start, seq) << "rows of different lengths";
  }
  return out;
}

inline Documents test_documents(const PackedDocuments& packed, bool reset_positions,
                                const at::Device& device = at::kCPU) {
  return find_documents(packed.tokens, {kTestSeparator, /*opens_document=*/true}, reset_positions,
                        device);
}

// The span's slice of a [B, S, ...] tensor, as [1, length, ...].
inline at::Tensor span_of(const at::Tensor& x, const DocumentSpan& span) {
  return x.narrow(0, span.row, 1).narrow(1, span.start, span.length);
}

}  // namespace cca::testing
