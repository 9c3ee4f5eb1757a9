#include "optim/weight_decay.h"

namespace cca {
namespace {

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool takes_weight_decay(const std::string& name, const at::Tensor& parameter,
                        const OptimConfig& optim) {
  if (name == "embedding" || name == "lm_head") return optim.decay_embeddings;
  const bool vector_like = parameter.dim() < 2 || ends_with(name, ".bias");
  return vector_like ? optim.decay_norms_and_biases : true;
}

bool orthogonalised_by_muon(const std::string& name, const at::Tensor& parameter) {
  if (name == "embedding" || name == "lm_head") return false;
  if (parameter.dim() < 2 || parameter.dim() > 3 || ends_with(name, ".bias")) return false;
  if (ends_with(name, "router_weight")) return false;
  return name.find(".conv") == std::string::npos;
}

}  // namespace cca
