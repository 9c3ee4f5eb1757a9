#include "train/evaluation.h"

#include "train/device_batch.h"

namespace cca {

ValidationSum validation_loss_sum(TransformerImpl& model, const data::ValidationSet& set,
                                  const EvalSetup& setup) {
  ValidationSum sum;
  sum.loss_sum = at::zeros({}, at::TensorOptions(setup.device).dtype(at::kDouble));
  for (int64_t i = 0; i < set.batches(setup.batch_size); ++i) {
    const data::Batch batch = set.batch(i, setup.batch_size);
    auto [inputs, targets] = to_device(batch, setup.device);
    std::optional<Documents> documents;
    if (setup.separator) {
      documents = batch_documents(batch, *setup.separator, setup.reset_positions, setup.device);
    }
    AutocastScope autocast(setup.precision, setup.device);
    const LossBreakdown parts =
        model.loss(inputs, targets, count_valid_targets(batch), documents ? &*documents : nullptr);
    sum.loss_sum += parts.cross_entropy.to(at::kDouble) * static_cast<double>(parts.valid_tokens);
    sum.tokens += parts.valid_tokens;
  }
  return sum;
}

std::vector<DataSource> validation_sources(const DataConfig& data) {
  std::vector<DataSource> sets = data.val_sources;
  if (sets.empty() && !data.val.empty()) sets.push_back({"", data.val, 1});
  return sets;
}

}  // namespace cca
