// find_documents: document ids, in-document positions and cumulative lengths from separator
// tokens (BOS before each document or EOS after each), and the block-diagonal causal mask.
#include <gtest/gtest.h>

#include <vector>

#include "ops/documents.h"
#include "util/error.h"

namespace cca {
namespace {

at::Tensor long_tensor(const std::vector<int64_t>& values, int64_t rows) {
  return at::tensor(values, at::kLong).view({rows, -1});
}

std::vector<int64_t> as_vector(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

TEST(FindDocuments, BosOpensEachDocument) {
  // Row 0: a document cut by the window, then two; row 1: one document starting at a BOS.
  const at::Tensor tokens = long_tensor({7, 8, 1, 9, 9, 1, 1, 4, 5, 6, 7, 8}, 2);
  const Documents d = find_documents(tokens, {1, true}, true, at::kCPU);
  EXPECT_EQ(as_vector(d.ids), (std::vector<int64_t>{0, 0, 1, 1, 1, 2, 3, 3, 3, 3, 3, 3}));
  EXPECT_EQ(as_vector(d.positions), (std::vector<int64_t>{0, 1, 0, 1, 2, 0, 0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(as_vector(d.cu_seqlens), (std::vector<int64_t>{0, 2, 5, 6, 12}));
  EXPECT_EQ(d.cu_seqlens.scalar_type(), at::kInt);
  EXPECT_EQ(d.max_length, 6);
  EXPECT_TRUE(d.reset_positions);
}

TEST(FindDocuments, EosClosesEachDocument) {
  // The EOS belongs to the document it ends; a row ending in EOS starts nothing after it.
  const at::Tensor tokens = long_tensor({5, 2, 6, 6, 2, 7, 8, 9, 2, 3, 3, 2}, 2);
  const Documents d = find_documents(tokens, {2, false}, false, at::kCPU);
  EXPECT_EQ(as_vector(d.ids), (std::vector<int64_t>{0, 0, 1, 1, 1, 2, 3, 3, 3, 4, 4, 4}));
  EXPECT_EQ(as_vector(d.positions), (std::vector<int64_t>{0, 1, 0, 1, 2, 0, 0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(as_vector(d.cu_seqlens), (std::vector<int64_t>{0, 2, 5, 6, 9, 12}));
  EXPECT_EQ(d.max_length, 3);
}

TEST(FindDocuments, NoSeparatorIsOneDocumentPerRow) {
  const at::Tensor tokens = at::full({3, 4}, 9, at::kInt);
  const Documents d = find_documents(tokens, {1, true}, false, at::kCPU);
  EXPECT_EQ(as_vector(d.ids), (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(as_vector(d.cu_seqlens), (std::vector<int64_t>{0, 4, 8, 12}));
  EXPECT_EQ(d.max_length, 4);
}

TEST(FindDocuments, RefusesAMissingSeparator) {
  EXPECT_THROW(find_documents(at::zeros({1, 4}, at::kLong), {-1, true}, false, at::kCPU), Error);
}

TEST(DocumentMask, BlockDiagonalCausalAndWindowed) {
  const at::Tensor tokens = long_tensor({1, 5, 5, 1, 5, 5}, 1);
  const Documents d = find_documents(tokens, {1, true}, false, at::kCPU);
  const at::Tensor mask = document_mask(d).squeeze(0).squeeze(0).to(at::kLong);
  EXPECT_EQ(as_vector(mask), (std::vector<int64_t>{1, 0, 0, 0, 0, 0,  //
                                                   1, 1, 0, 0, 0, 0,  //
                                                   1, 1, 1, 0, 0, 0,  //
                                                   0, 0, 0, 1, 0, 0,  //
                                                   0, 0, 0, 1, 1, 0,  //
                                                   0, 0, 0, 1, 1, 1}));
  const at::Tensor windowed = document_mask(d, 2).squeeze(0).squeeze(0).to(at::kLong);
  EXPECT_EQ(as_vector(windowed), (std::vector<int64_t>{1, 0, 0, 0, 0, 0,  //
                                                       1, 1, 0, 0, 0, 0,  //
                                                       0, 1, 1, 0, 0, 0,  //
                                                       0, 0, 0, 1, 0, 0,  //
                                                       0, 0, 0, 1, 1, 0,  //
                                                       0, 0, 0, 0, 1, 1}));
}

}  // namespace
}  // namespace cca
