// Model FLOPs utilisation: achieved training FLOP/s over the device's dense bf16 peak.
// Peaks come from a table keyed by device name (override with an explicit figure); MFU above 100%
// means the FLOP count or the peak is wrong, so it is reported as an error, never as a number.
#pragma once

#include <optional>
#include <string>

namespace cca {

// Dense peak FLOP/s for a device name as CUDA reports it ("NVIDIA H200", "NVIDIA A100-SXM4-80GB").
// bf16 tensor-core peaks for GPUs; nullopt for devices not in the table (CPUs included).
std::optional<double> peak_flops_for_device(const std::string& device_name);

// achieved / peak, with achieved = tokens_per_second × flops_per_token. Throws cca::Error when the
// result exceeds 1 (naming both figures), returns nullopt when the peak is unknown.
std::optional<double> model_flops_utilisation(double tokens_per_second, double flops_per_token,
                                              std::optional<double> peak_flops);

}  // namespace cca
