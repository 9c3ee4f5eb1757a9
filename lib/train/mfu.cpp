#include "train/mfu.h"

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "util/error.h"
#include "util/format.h"

namespace cca {
namespace {

// Dense (no sparsity) bf16 tensor-core peaks from the vendors' datasheets. Order matters: the
// first key contained in the name wins, so more specific names come first.
const std::vector<std::pair<std::string, double>>& peak_table() {
  static const std::vector<std::pair<std::string, double>> table = {
      {"h200", 989e12},  {"h100 pcie", 756e12}, {"h100", 989e12},    {"gh200", 989e12},
      {"b200", 2250e12}, {"a100", 312e12},      {"a800", 312e12},    {"l40s", 362e12},
      {"a10g", 70e12},   {"rtx 4090", 165e12},  {"rtx 3090", 71e12}, {"v100", 125e12},
  };
  return table;
}

}  // namespace

std::optional<double> peak_flops_for_device(const std::string& device_name) {
  std::string lower = device_name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const auto& [key, peak] : peak_table()) {
    if (lower.find(key) != std::string::npos) return peak;
  }
  return std::nullopt;
}

std::optional<double> model_flops_utilisation(double tokens_per_second, double flops_per_token,
                                              std::optional<double> peak_flops) {
  if (!peak_flops || *peak_flops <= 0) return std::nullopt;
  const double mfu = tokens_per_second * flops_per_token / *peak_flops;
  if (mfu > 1.0) {
    throw Error(
        format("MFU would be {:.1f}% ({:.3e} FLOP/s achieved vs a {:.3e} FLOP/s peak): the "
               "FLOP count or the device peak is wrong; set the peak explicitly",
               100.0 * mfu, tokens_per_second * flops_per_token, *peak_flops));
  }
  return mfu;
}

}  // namespace cca
