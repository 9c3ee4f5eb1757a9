#include "optim/grad_clip.h"

#include "util/error.h"

namespace cca {

StepReport check_and_clip(std::vector<at::Tensor>& grads, double grad_clip, const at::Tensor& loss,
                          const at::Tensor& frozen) {
  if (grads.empty()) throw Error("optimizer: no parameters to update");
  StepReport report;
  report.grad_norm = at::stack(at::_foreach_norm(grads, 2)).norm();
  at::Tensor bad = report.grad_norm.isfinite().logical_not();
  if (loss.defined()) bad = bad.logical_or(loss.detach().isfinite().logical_not().to(bad.device()));
  if (frozen.defined()) bad = bad.logical_or(frozen.to(bad.device()).ne(0));
  report.skipped = bad.to(at::kFloat);
  if (grad_clip > 0) {
    const at::Tensor scale = (grad_clip / (report.grad_norm + 1e-6)).clamp_max(1.0);
    at::_foreach_mul_(grads, scale);
  }
  return report;
}

}  // namespace cca
