#include "train/tensor_io.h"

#include <ATen/core/grad_mode.h>

#include <cstring>

#include "checkpoint/safetensors.h"
#include "util/error.h"
#include "util/strings.h"

namespace cca {
namespace {

at::ScalarType torch_dtype(const std::string& dtype, const std::string& where) {
  static const std::map<std::string, at::ScalarType> kTypes = {
      {"F32", at::kFloat}, {"F64", at::kDouble}, {"BF16", at::kBFloat16}, {"F16", at::kHalf},
      {"I64", at::kLong},  {"I32", at::kInt},    {"U8", at::kByte},       {"BOOL", at::kBool}};
  const auto found = kTypes.find(dtype);
  if (found == kTypes.end()) throw Error(where + ": dtype " + dtype + " is not used by cca-train");
  return found->second;
}

}  // namespace

std::string safetensors_dtype(at::ScalarType type) {
  switch (type) {
    case at::kFloat:
      return "F32";
    case at::kDouble:
      return "F64";
    case at::kBFloat16:
      return "BF16";
    case at::kHalf:
      return "F16";
    case at::kLong:
      return "I64";
    case at::kInt:
      return "I32";
    case at::kByte:
      return "U8";
    case at::kBool:
      return "BOOL";
    default:
      throw Error(std::string("no safetensors dtype for ") + c10::toString(type));
  }
}

FileDigest write_tensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                         const std::map<std::string, std::string>& metadata) {
  safetensors::Writer writer;
  std::vector<at::Tensor> host;  // keeps the CPU copies alive until the file is written
  host.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    host.push_back(tensor.detach().to(at::kCPU).contiguous());
    const at::Tensor& t = host.back();
    writer.add(name, safetensors_dtype(t.scalar_type()), t.sizes().vec(), t.data_ptr(),
               t.numel() * t.element_size());
  }
  for (const auto& [key, value] : metadata) writer.set_metadata(key, value);
  return writer.write(path);
}

std::map<std::string, at::Tensor> read_tensors(const std::string& path) {
  const safetensors::File file = safetensors::File::open(path);
  std::map<std::string, at::Tensor> out;
  for (const safetensors::TensorInfo& info : file.tensors()) {
    const at::ScalarType type = torch_dtype(info.dtype, path + ": tensor '" + info.name + "'");
    at::Tensor t = at::empty(info.shape, at::TensorOptions().dtype(type));
    if (info.bytes() > 0) std::memcpy(t.data_ptr(), file.data(info), info.bytes());
    out.emplace(info.name, std::move(t));
  }
  return out;
}

std::vector<NamedTensor> model_tensors(TransformerImpl& model) {
  std::vector<NamedTensor> tensors;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    tensors.push_back({item.key(), item.value()});
  }
  for (const auto& item : model.named_buffers(/*recurse=*/true)) {
    tensors.push_back({item.key(), item.value()});
  }
  return tensors;
}

void load_model_weights(const std::string& path, TransformerImpl& model) {
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> saved = read_tensors(path);
  std::vector<std::string> missing;
  for (auto& [name, target] : model_tensors(model)) {
    const auto found = saved.find(name);
    if (found == saved.end()) {
      missing.push_back(name);
      continue;
    }
    const at::Tensor& source = found->second;
    if (source.sizes() != target.sizes()) {
      throw Error(path + ": tensor '" + name + "' has shape " + shape_text(source.sizes().vec()) +
                  ", the model expects " + shape_text(target.sizes().vec()));
    }
    if (source.is_floating_point() != target.is_floating_point()) {
      throw Error(path + ": tensor '" + name + "' is " + safetensors_dtype(source.scalar_type()) +
                  ", the model expects " + safetensors_dtype(target.scalar_type()));
    }
    target.copy_(source);
    saved.erase(found);
  }
  if (!missing.empty() || !saved.empty()) {
    std::vector<std::string> extra;
    for (const auto& item : saved) extra.push_back(item.first);
    throw Error(path + ": tensors do not match the model (missing: " +
                (missing.empty() ? "none" : join(missing, ", ")) +
                "; unexpected: " + (extra.empty() ? "none" : join(extra, ", ")) + ")");
  }
}

}  // namespace cca
