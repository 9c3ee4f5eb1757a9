// Document masking through the whole model (data.document_masking): for every variant, dense and
// MoE, a packed row A|B|C gives B's and C's logits and weight gradients as B and C alone, with
// and without activation checkpointing; without masking the logits differ. CPU float64, and a
// CUDA float32 case that skips without a GPU.
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <vector>

#include "model/model_test_util.h"
#include "ops/device.h"
#include "testing/documents.h"
#include "util/error.h"

namespace cca {
namespace {

using testing::DocumentSpan;
using testing::PackedDocuments;
using testing::span_of;

struct ModelRun {
  std::vector<at::Tensor> logits;  // of the documents after the first of a row
  std::vector<at::Tensor> grads;
};

ModelRun run_packed(TransformerImpl& model, const PackedDocuments& packed, const at::Tensor& weight,
                    const Documents* documents) {
  const at::Tensor logits = model.forward(packed.tokens.to(weight.device()), nullptr, documents);
  ModelRun run;
  at::Tensor loss = at::zeros({}, logits.options());
  for (const DocumentSpan& span : packed.spans) {
    if (span.start == 0) continue;
    run.logits.push_back(span_of(logits, span));
    loss = loss + (span_of(logits, span) * span_of(weight, span)).sum();
  }
  run.grads = testing::parameter_grads(model, loss);
  return run;
}

ModelRun run_alone(TransformerImpl& model, const PackedDocuments& packed,
                   const at::Tensor& weight) {
  ModelRun run;
  at::Tensor loss = at::zeros({}, weight.options());
  for (const DocumentSpan& span : packed.spans) {
    if (span.start == 0) continue;
    const at::Tensor tokens = span_of(packed.tokens, span).contiguous().to(weight.device());
    const at::Tensor logits = model.forward(tokens);
    run.logits.push_back(logits);
    loss = loss + (logits * span_of(weight, span)).sum();
  }
  run.grads = testing::parameter_grads(model, loss);
  return run;
}

void expect_model_isolates_documents(const ModelCase& mc, const at::Device& device,
                                     at::ScalarType dtype, bool checkpointing, double tol) {
  Config c = tiny_config(mc);
  auto model = make_model(c, dtype);
  {
    at::NoGradGuard no_grad;
    for (at::Tensor& p : model->parameters()) p.add_(at::randn_like(p).mul(0.05));
  }
  model->to(device);
  model->train();
  model->set_activation_checkpointing(checkpointing);
  at::manual_seed(9);
  const PackedDocuments packed = testing::pack_documents({{5, 6, 5}, {7, 4, 5}}, 64);
  const Documents documents = testing::test_documents(packed, true, device);
  const at::Tensor weight =
      at::randn({2, 16, c.model.vocab_size}, at::TensorOptions().dtype(dtype).device(device));

  const ModelRun alone = run_alone(*model, packed, weight);
  const ModelRun masked = run_packed(*model, packed, weight, &documents);
  EXPECT_LT(testing::worst_relative_error(masked.logits, alone.logits), tol)
      << "B's and C's logits differ from alone";
  EXPECT_LT(testing::worst_relative_error(masked.grads, alone.grads), tol)
      << "weight gradients differ from alone";
  const ModelRun unmasked = run_packed(*model, packed, weight, nullptr);
  EXPECT_GT(testing::worst_relative_error(unmasked.logits, alone.logits), 100 * tol)
      << "masking off changes nothing?";
}

class ModelDocuments : public ::testing::TestWithParam<ModelCase> {};

TEST_P(ModelDocuments, PackedDocumentsEqualDocumentsAlone) {
  expect_model_isolates_documents(GetParam(), at::kCPU, at::kDouble, false, 1e-10);
}

TEST_P(ModelDocuments, PackedDocumentsEqualDocumentsAloneWithCheckpointing) {
  expect_model_isolates_documents(GetParam(), at::kCPU, at::kDouble, true, 1e-10);
}

TEST_P(ModelDocuments, CudaPackedDocumentsEqualDocumentsAlone) {
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: GPU path not exercised";
  expect_model_isolates_documents(GetParam(), at::kCUDA, at::kFloat, false, 2e-4);
}

INSTANTIATE_TEST_SUITE_P(Variants, ModelDocuments,
                         ::testing::Values(ModelCase{"mha", false}, ModelCase{"gqa", false},
                                           ModelCase{"mla", false}, ModelCase{"cca", false},
                                           ModelCase{"ccgqa", false}, ModelCase{"swa", false},
                                           ModelCase{"mha", true}, ModelCase{"cca", true}),
                         case_name);

TEST(ModelDocuments, DocumentsWithACacheAreRefused) {
  auto model = make_model(tiny_config({"mha", false}), at::kFloat);
  const PackedDocuments packed = testing::pack_documents({{3, 4}}, 64);
  const Documents documents = testing::test_documents(packed, false);
  ModelCache cache = model->new_cache();
  EXPECT_THROW(model->forward(packed.tokens, &cache, &documents), Error);
}

}  // namespace
}  // namespace cca
