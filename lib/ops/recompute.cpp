#include "ops/recompute.h"

#include <ATen/autocast_mode.h>
#include <torch/autograd.h>

#include "ops/fp8_linear.h"

namespace cca {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

thread_local bool g_recomputing = false;

// Autocast as it was when the forward ran, re-entered for the recomputation.
class AutocastRestore {
 public:
  AutocastRestore(c10::DeviceType type, bool enabled, at::ScalarType dtype)
      : type_(type),
        previous_enabled_(at::autocast::is_autocast_enabled(type)),
        previous_dtype_(at::autocast::get_autocast_dtype(type)) {
    at::autocast::set_autocast_dtype(type, dtype);
    at::autocast::set_autocast_enabled(type, enabled);
    at::autocast::increment_nesting();
  }
  ~AutocastRestore() {
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(type_, previous_enabled_);
    at::autocast::set_autocast_dtype(type_, previous_dtype_);
  }
  AutocastRestore(const AutocastRestore&) = delete;
  AutocastRestore& operator=(const AutocastRestore&) = delete;

 private:
  c10::DeviceType type_;
  bool previous_enabled_;
  at::ScalarType previous_dtype_;
};

class RecomputingScope {
 public:
  RecomputingScope() : previous_(g_recomputing) { g_recomputing = true; }
  ~RecomputingScope() { g_recomputing = previous_; }
  RecomputingScope(const RecomputingScope&) = delete;
  RecomputingScope& operator=(const RecomputingScope&) = delete;

 private:
  bool previous_;
};

class RecomputeFunction : public torch::autograd::Function<RecomputeFunction> {
 public:
  static tensor_list forward(AutogradContext* ctx, const at::Tensor& x, RecomputableLayer* layer) {
    const c10::DeviceType type = x.device().type();
    ctx->save_for_backward({x});
    ctx->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    ctx->saved_data["autocast"] = at::autocast::is_autocast_enabled(type);
    ctx->saved_data["autocast_dtype"] =
        static_cast<int64_t>(at::autocast::get_autocast_dtype(type));
    const Fp8Mode fp8 = current_fp8_mode();
    ctx->saved_data["fp8"] = fp8.enabled ? static_cast<int64_t>(fp8.scaling) : int64_t{-1};
    return layer->recomputable_forward(x);  // grad mode is off here: nothing is kept
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    auto* layer = reinterpret_cast<RecomputableLayer*>(ctx->saved_data["layer"].toInt());
    const at::Tensor x_again = x.detach().requires_grad_(true);
    tensor_list outputs;
    {
      at::AutoGradMode grad(true);
      const AutocastRestore autocast(
          x.device().type(), ctx->saved_data["autocast"].toBool(),
          static_cast<at::ScalarType>(ctx->saved_data["autocast_dtype"].toInt()));
      // The backward thread has no fp8 mode of its own: the recomputation takes the forward's.
      const int64_t fp8 = ctx->saved_data["fp8"].toInt();
      const Fp8ModeScope fp8_mode(Fp8Mode{fp8 >= 0, static_cast<Fp8Scaling>(fp8 < 0 ? 0 : fp8)});
      const RecomputingScope recomputing;
      outputs = layer->recomputable_forward(x_again);
    }
    tensor_list roots, grads;
    for (size_t i = 0; i < outputs.size(); ++i) {
      if (!grad_outputs[i].defined() || !outputs[i].requires_grad()) continue;
      roots.push_back(outputs[i]);
      grads.push_back(grad_outputs[i]);
    }
    torch::autograd::backward(roots, grads);  // parameters' .grad accumulate here
    return {x_again.grad(), at::Tensor()};
  }
};

}  // namespace

std::vector<at::Tensor> recomputed(RecomputableLayer& layer, const at::Tensor& x) {
  return RecomputeFunction::apply(x, &layer);
}

bool recomputing_activations() {
  return g_recomputing;
}

}  // namespace cca
