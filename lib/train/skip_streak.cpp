#include "train/skip_streak.h"

#include <cmath>
#include <vector>

#include "util/format.h"

namespace cca {

SkipStreak::SkipStreak(at::Device device, int64_t limit) : limit_(limit) {
  const auto options = at::TensorOptions(device).dtype(at::kFloat);
  run_ = at::zeros({}, options);
  tripped_at_ = at::full({}, -1, options.dtype(at::kLong));
  tripped_loss_ = at::zeros({}, options);
  tripped_grad_norm_ = at::zeros({}, options);
}

void SkipStreak::add(const at::Tensor& skipped, const at::Tensor& loss, const at::Tensor& grad_norm,
                     int64_t step) {
  if (limit_ <= 0) return;
  run_ = (run_ + skipped) * skipped;  // back to 0 at a kept step
  const at::Tensor trips = run_.ge(static_cast<double>(limit_)).logical_and(tripped_at_.lt(0));
  tripped_at_ = at::where(trips, at::full_like(tripped_at_, step), tripped_at_);
  tripped_loss_ = at::where(trips, loss.detach().to(at::kFloat), tripped_loss_);
  tripped_grad_norm_ = at::where(trips, grad_norm.detach().to(at::kFloat), tripped_grad_norm_);
}

std::optional<int64_t> SkipStreak::tripped_at() const {
  if (limit_ <= 0) return std::nullopt;
  const int64_t step = tripped_at_.item<int64_t>();
  if (step < 0) return std::nullopt;
  return step;
}

std::string SkipStreak::explain(TransformerImpl& model, const std::string& resumed_from) const {
  const int64_t last = tripped_at_.item<int64_t>();
  const double loss = tripped_loss_.item<double>(), grad_norm = tripped_grad_norm_.item<double>();
  std::vector<std::string> bad_weights;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    if (!item.value().isfinite().all().item<bool>()) bad_weights.push_back(item.key());
  }
  const auto spell = [](double x) -> std::string {
    if (std::isnan(x)) return "NaN";
    if (std::isinf(x)) return x > 0 ? "+inf" : "-inf";
    return format("{:.4g}", x);
  };
  const std::string quantity = !std::isfinite(loss)
                                   ? format("the loss was {}", spell(loss))
                                   : format("the loss was finite ({}) but the gradient norm was {}",
                                            spell(loss), spell(grad_norm));
  std::string cause;
  if (!bad_weights.empty()) {
    cause = format(
        "The model's weights hold non-finite values ({} tensor(s), first {}), so no step can "
        "succeed: they were so when this launch began ({}), or an update made them so. Resume "
        "from an earlier checkpoint (`cca-train verify RUN_DIR` lists them)",
        bad_weights.size(), bad_weights.front(),
        resumed_from.empty() ? "a fresh start" : "resumed from " + resumed_from);
  } else if (!std::isfinite(loss)) {
    cause =
        "The weights are finite, so the forward pass overflows: lower optim.lr or raise "
        "schedule.warmup_steps; train.precision: fp32 shows whether bf16 is the cause";
  } else {
    cause =
        "The weights and the loss are finite, so the backward pass overflows: lower optim.lr or "
        "raise schedule.warmup_steps; train.precision: fp32 shows whether bf16 is the cause";
  }
  return format(
      "steps {} to {}: {} optimizer steps in a row were skipped for a non-finite loss or gradient "
      "(train.max_consecutive_skips: {}), so training stops: at step {} {}. {}. Skipped steps "
      "change no weights, so the checkpoints written meanwhile hold the weights from before step "
      "{}",
      last - limit_ + 1, last, limit_, limit_, last, quantity, cause, last - limit_ + 1);
}

}  // namespace cca
