// Named tensors to and from safetensors files (lib/checkpoint/safetensors.h does the bytes; this
// maps LibTorch dtypes and copies), and loading a model's weights from a checkpoint or an export.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "model/transformer.h"
#include "ops/named_tensor.h"
#include "util/hash.h"

namespace cca {

// "F32", "BF16", ... for the dtypes cca-train writes; throws cca::Error for others.
std::string safetensors_dtype(at::ScalarType type);
// Writes CPU copies of `tensors` (any device) with `metadata`; fsyncs the file. Returns its size
// and checksum.
FileDigest write_tensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                         const std::map<std::string, std::string>& metadata);
// Every tensor of the file as a CPU tensor (copied: nothing refers to the file afterwards).
std::map<std::string, at::Tensor> read_tensors(const std::string& path);

// Parameters then buffers, by module path ("blocks.0.attention.linear_q.weight").
std::vector<NamedTensor> model_tensors(TransformerImpl& model);
// Copies every parameter and buffer of `model` from `path` (a checkpoint's or an export's
// model.safetensors). Names and shapes must match exactly (a clear error lists what is missing
// or unexpected); floating-point tensors are converted to the model's dtype.
void load_model_weights(const std::string& path, TransformerImpl& model);

}  // namespace cca
