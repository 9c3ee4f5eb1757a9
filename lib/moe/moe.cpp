// PLACEHOLDER: replaced by the MoE implementation.
#include "moe/moe.h"
#include "util/error.h"
namespace cca {
MoeImpl::MoeImpl(int64_t, const MoeConfig& config, int64_t, double, double) : config_(config) {
  throw Error("moe not implemented yet");
}
at::Tensor MoeImpl::forward(const at::Tensor& x, MoeLosses&) { return x; }
void MoeImpl::update_selection_bias() {}
}  // namespace cca
