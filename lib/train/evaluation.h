// The validation loss of a model over a ValidationSet: one loop, shared by the trainer's
// evaluation (lib/train/trainer_data.cpp) and `cca-train eval` (lib/train/checkpoint_eval.h), so
// a checkpoint evaluated afterwards sees exactly the batches, masks and precision training saw.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "config/config.h"
#include "data/validation_set.h"
#include "model/transformer.h"
#include "ops/documents.h"
#include "ops/precision.h"

namespace cca {

struct EvalSetup {
  at::Device device = at::Device(at::kCPU);
  Precision precision;
  int64_t batch_size = 1;                      // train.micro_batch_size
  std::optional<DocumentSeparator> separator;  // data.document_masking
  bool reset_positions = false;                // data.reset_positions
};

// This process's share of a set: the cross-entropy summed over its valid targets (a float64
// scalar on the device, for an all-reduce) and their count. The caller sets no-grad/eval mode.
struct ValidationSum {
  at::Tensor loss_sum;
  int64_t tokens = 0;
};
ValidationSum validation_loss_sum(TransformerImpl& model, const data::ValidationSet& set,
                                  const EvalSetup& setup);

// data.val as named sets: the list's entries, or one unnamed set for data.val as one dataset,
// or none without data.val.
std::vector<DataSource> validation_sources(const DataConfig& data);

}  // namespace cca
