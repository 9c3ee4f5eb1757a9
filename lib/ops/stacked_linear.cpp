#include "ops/stacked_linear.h"

#include "ops/autocast.h"
#include "ops/fp8_linear.h"

namespace cca {

std::vector<at::Tensor> stacked_linear(const at::Tensor& x,
                                       const std::vector<at::Tensor>& weights) {
  const std::optional<at::ScalarType> compute = autocast_dtype(x);
  std::vector<at::Tensor> parts;
  std::vector<int64_t> sizes;
  for (const at::Tensor& w : weights) {
    const bool cast = compute && w.scalar_type() == at::kFloat && *compute != at::kFloat;
    parts.push_back(cast ? autocast_weight(w, *compute) : w);
    sizes.push_back(w.size(0));
  }
  return at::split_with_sizes(hidden_linear(x, at::cat(parts, 0)), sizes, -1);
}

}  // namespace cca
