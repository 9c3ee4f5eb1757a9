// Mixed precision by autocast: parameters, gradients and optimizer state stay float32 (the
// parameters *are* the master weights), and matrix products run in bf16 inside an autocast
// region. Why this and not a bf16 model with a separate fp32 copy: gradients accumulate over
// micro-batches in fp32 with no extra buffer, checkpoints hold exactly what the optimizer updates,
// and every module (MoE router, CCA normalisation) keeps its own fp32 islands. bf16 has fp32's
// exponent range, so no loss scaling is needed. docs/training.md says the same for users.
// train.precision: fp8 is bf16 autocast plus fp8 products for the hidden linear layers
// (ops/fp8_linear.h), still on fp32 master weights.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>

#include "ops/fp8.h"
#include "ops/fp8_linear.h"

namespace cca {

struct Precision {
  bool autocast = false;                      // false: everything in fp32
  at::ScalarType compute_dtype = at::kFloat;  // bf16 under autocast
  bool fp8 = false;                           // hidden linear layers in fp8 (with autocast on)
  Fp8Scaling fp8_scaling = Fp8Scaling::kTensor;
  std::string name() const;
  // "fp32", "bf16" or "fp8": the train.precision value that gives this.
  std::string short_name() const { return fp8 ? "fp8" : autocast ? "bf16" : "fp32"; }
};

// train.precision auto | fp32 | bf16 | fp8 for `device`: auto = bf16 on CUDA, fp32 on CPU; fp8
// (with train.fp8.scaling tensor | row) throws cca::Error unless the device has FP8 tensor cores.
Precision resolve_precision(const std::string& requested, const at::Device& device,
                            const std::string& fp8_scaling = "tensor");

// Enables autocast for the device type (and fp8 mode for fp8) while alive; restores the previous
// state and drops the cast-weight cache on exit (weights change after every optimizer step).
class AutocastScope {
 public:
  AutocastScope(const Precision& precision, const at::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  std::optional<Fp8ModeScope> fp8_;  // train.precision: fp8
  at::DeviceType device_type_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kFloat;
};

// Keeps autocast's cast-weight cache alive across the micro-batches of one step, so each weight
// is cast to bf16 once per step instead of once per micro-batch (for an MoE model that is
// gigabytes of casts per micro-batch). Ends before the optimizer changes the weights.
class StepCastCache {
 public:
  explicit StepCastCache(const Precision& precision);
  ~StepCastCache();
  StepCastCache(const StepCastCache&) = delete;
  StepCastCache& operator=(const StepCastCache&) = delete;

 private:
  bool active_ = false;
};

}  // namespace cca
