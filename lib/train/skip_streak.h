// train.max_consecutive_skips: a run whose every step is dropped for a non-finite loss or gradient
// is not training, and running on only burns the budget. The streak is counted on the device (no
// host sync per step) and read where the trainer syncs anyway: at logging and checkpoints.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>

#include "model/transformer.h"

namespace cca {

class SkipStreak {
 public:
  // `limit` steps in a row trip it; 0 never does.
  SkipStreak(at::Device device, int64_t limit);

  // After optimizer step `step` (1-based): `skipped` is 1.0 when it was dropped; `loss` and
  // `grad_norm` are its values (kept from the step that trips, for the message).
  void add(const at::Tensor& skipped, const at::Tensor& loss, const at::Tensor& grad_norm,
           int64_t step);

  // The step at which `limit` skips in a row were reached, if ever (syncs with the device).
  std::optional<int64_t> tripped_at() const;

  // The error for a tripped streak: the steps, which quantity was non-finite, and the likely
  // cause (non-finite weights, or an overflow in the forward or backward pass).
  std::string explain(TransformerImpl& model, const std::string& resumed_from) const;

 private:
  int64_t limit_;
  at::Tensor run_, tripped_at_, tripped_loss_, tripped_grad_norm_;
};

}  // namespace cca
