// The model's hidden linear layers in FP8 (train.precision: fp8): one switch where their products
// are made. Attention projections and the FFN call hidden_linear (directly or through
// stacked_linear); while an Fp8ModeScope is active it runs the product through fp8_linear, else
// it is at::linear (bf16 under autocast). Embeddings, the LM head, norms, the MoE router and the
// routed experts never come here and stay bf16.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>

#include "ops/fp8.h"

namespace cca {

// Whether hidden linear layers run in fp8 on this thread, and with which scaling.
struct Fp8Mode {
  bool enabled = false;
  Fp8Scaling scaling = Fp8Scaling::kTensor;
};

Fp8Mode current_fp8_mode();

// Sets the thread's fp8 mode while alive and restores the previous one on exit (AutocastScope
// opens one for train.precision: fp8; the recomputation of a checkpointed block re-enters the
// mode its forward ran with).
class Fp8ModeScope {
 public:
  explicit Fp8ModeScope(Fp8Mode mode);
  ~Fp8ModeScope();
  Fp8ModeScope(const Fp8ModeScope&) = delete;
  Fp8ModeScope& operator=(const Fp8ModeScope&) = delete;

 private:
  Fp8Mode previous_;
};

// x [..., K] · weightᵀ (weight [N, K]), bf16 out: x and the weight quantised to e4m3, the
// gradient to e5m2 in backward; dX = dy·W and dW = dyᵀ·x are fp8 products too. Returns dX in x's
// dtype and dW in the weight's (fp32 for a master weight, as autocast's cast gives it).
at::Tensor fp8_linear(const at::Tensor& x, const at::Tensor& weight, Fp8Scaling scaling);

// Why an [rows, in] · [out, in]ᵀ product cannot run in fp8 (FP8 GEMMs need in and out, and rows
// for the weight gradient, to be multiples of 16); empty when it can.
std::string fp8_shape_problem(int64_t rows, int64_t in, int64_t out);

// The scaling to run an [.., in] → [.., out] product of x in, when the thread's fp8 mode is on
// and the shapes allow it (the layer's widths are noted for fp8_layer_summary); nullopt: bf16.
std::optional<Fp8Scaling> fp8_scaling_for(const at::Tensor& x, int64_t in, int64_t out);

// x · weightᵀ for a hidden linear layer: fp8_linear on the fp32 master weight itself when
// fp8_scaling_for says so, else at::linear with the weight through autocast's cast cache (one
// bf16 copy per step).
at::Tensor hidden_linear(const at::Tensor& x, const at::Tensor& weight);

// The layer shapes hidden_linear has met in fp8 mode so far, those in fp8 and those that fell
// back to bf16 with the reason: "fp8: 2048→6144, 2048→2048 …; bf16: 2048→100 (out 100 is not a
// multiple of 16)". Empty before the first fp8-mode product. For the trainer's one log line.
std::string fp8_layer_summary();

}  // namespace cca
