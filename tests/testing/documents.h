// Packed sequences of known documents for the document-masking tests: tokens with a separator
// at each document's start, and where each document lies.
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/autograd.h>
#include <torch/nn/module.h>

#include <algorithm>

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

// ‖got − want‖ / ‖want‖ in float64 on the CPU, for tensors on any device (the plain difference
// where want is zero).
inline double relative_error(const at::Tensor& got, const at::Tensor& want) {
  const at::Tensor w = want.detach().cpu().to(at::kDouble);
  const double difference = (got.detach().cpu().to(at::kDouble) - w).norm().item<double>();
  const double scale = w.norm().item<double>();
  return scale > 0 ? difference / scale : difference;
}

// The largest relative_error over pairs of tensors.
inline double worst_relative_error(const std::vector<at::Tensor>& got,
                                   const std::vector<at::Tensor>& want) {
  double error = 0;
  for (size_t i = 0; i < want.size(); ++i) error = std::max(error, relative_error(got[i], want[i]));
  return error;
}

// d loss / d every parameter of `module`, zeros for those the loss does not reach.
inline std::vector<at::Tensor> parameter_grads(torch::nn::Module& module, const at::Tensor& loss) {
  const std::vector<at::Tensor> params = module.parameters();
  std::vector<at::Tensor> grads = torch::autograd::grad({loss}, params, {}, false, false, true);
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined()) grads[i] = at::zeros_like(params[i]);
  }
  return grads;
}

}  // namespace cca::testing
