#include "ops/stacked_linear.h"

#include <numeric>

#include "ops/autocast.h"
#include "ops/fp8_linear.h"

namespace cca {

std::vector<at::Tensor> stacked_linear(const at::Tensor& x,
                                       const std::vector<at::Tensor>& weights) {
  std::vector<int64_t> sizes;
  for (const at::Tensor& w : weights) sizes.push_back(w.size(0));
  const int64_t out = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  if (const std::optional<Fp8Scaling> scaling = fp8_scaling_for(x, weights.front().size(1), out)) {
    return at::split_with_sizes(fp8_linear(x, at::cat(weights, 0), *scaling), sizes, -1);
  }
  const std::optional<at::ScalarType> compute = autocast_dtype(x);
  std::vector<at::Tensor> parts;
  for (const at::Tensor& w : weights) {
    const bool cast = compute && w.scalar_type() == at::kFloat && *compute != at::kFloat;
    parts.push_back(cast ? autocast_weight(w, *compute) : w);
  }
  return at::split_with_sizes(at::linear(x, at::cat(parts, 0)), sizes, -1);
}

}  // namespace cca
