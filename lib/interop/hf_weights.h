// Weights in the Hugging Face layout: model.safetensors, or shards model-0000i-of-0000n.safetensors
// with model.safetensors.index.json ({"metadata": {"total_size": N}, "weight_map": {name: file}})
// once the tensors pass a size, as transformers' save_pretrained writes them; plus the float
// conversions an export or import needs (fp32 <-> bf16, fp16 -> fp32). Torch-free.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/safetensors.h"

namespace cca::interop {

// A tensor held in memory: dtype name (safetensors'), shape, row-major bytes.
struct HostTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

// Converts between F32, BF16 and F16 (fp32 -> bf16 rounds to nearest even; NaN stays NaN).
// Other dtypes only to themselves. Throws cca::Error naming `what` for unsupported pairs.
std::string convert_floats(const std::string& bytes, const std::string& from, const std::string& to,
                           const std::string& what);

// transformers' default shard limit.
inline constexpr uint64_t kDefaultMaxShardBytes = 5'000'000'000;

// Writes `tensors` (in order) into `dir`: one model.safetensors when they fit `max_shard_bytes`,
// else shards that each stay under it (a larger tensor gets a shard of its own) and the index.
// Returns the files written. Each file gets {"format": "pt"} metadata, as transformers expects.
std::vector<std::string> write_weights(
    const std::string& dir, const std::vector<std::pair<std::string, HostTensor>>& tensors,
    uint64_t max_shard_bytes);

// The weights of an HF folder, single-file or sharded, memory-mapped.
class HfWeights {
 public:
  // Throws cca::Error when neither model.safetensors nor its index is there, or a file the index
  // names is missing or malformed.
  explicit HfWeights(const std::string& dir);
  const std::string& dir() const { return dir_; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  // Throws cca::Error naming the folder and the tensor when absent.
  const safetensors::TensorInfo& info(const std::string& name) const;
  const uint8_t* data(const std::string& name) const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<safetensors::File>> files_;
  std::map<std::string, size_t> where_;  // tensor -> index into files_
};

}  // namespace cca::interop
