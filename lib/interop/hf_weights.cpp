#include "interop/hf_weights.h"

#include <cstring>
#include <fstream>

#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/json.h"

namespace cca::interop {
namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

float bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7f800000u) == 0x7f800000u && (bits & 0x007fffffu) != 0) {
    return static_cast<uint16_t>((bits >> 16) | 0x0040u);  // quiet NaN, sign kept
  }
  const uint32_t rounding = 0x7fffu + ((bits >> 16) & 1u);  // to nearest, ties to even
  return static_cast<uint16_t>((bits + rounding) >> 16);
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu, bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // inf / NaN
  } else if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      int shift = 0;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        ++shift;
      }
      bits = sign | ((127 - 15 + 1 - shift) << 23) | ((mantissa & 0x3ffu) << 13);
    }
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <class In, class Out, class Fn>
std::string map_elements(const std::string& bytes, Fn fn) {
  const size_t count = bytes.size() / sizeof(In);
  std::string out(count * sizeof(Out), '\0');
  for (size_t i = 0; i < count; ++i) {
    In in;
    std::memcpy(&in, bytes.data() + i * sizeof(In), sizeof(In));
    const Out value = fn(in);
    std::memcpy(&out[i * sizeof(Out)], &value, sizeof(Out));
  }
  return out;
}

// "00003", as transformers numbers its shards.
std::string five_digits(size_t n) {
  const std::string digits = std::to_string(n);
  return std::string(digits.size() < 5 ? 5 - digits.size() : 0, '0') + digits;
}

uint64_t tensor_bytes(const HostTensor& t) {
  return t.bytes.size();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) throw Error("cannot write '" + path + "'");
}

}  // namespace

std::string convert_floats(const std::string& bytes, const std::string& from, const std::string& to,
                           const std::string& what) {
  if (from == to) return bytes;
  if (from == "F32" && to == "BF16") {
    return map_elements<float, uint16_t>(bytes, f32_to_bf16);
  }
  if (from == "BF16" && to == "F32") return map_elements<uint16_t, float>(bytes, bf16_to_f32);
  if (from == "F16" && to == "F32") return map_elements<uint16_t, float>(bytes, f16_to_f32);
  throw Error(what + ": cannot convert " + from + " to " + to +
              " (F32, BF16 and F16 weights are supported)");
}

std::vector<std::string> write_weights(
    const std::string& dir, const std::vector<std::pair<std::string, HostTensor>>& tensors,
    uint64_t max_shard_bytes) {
  // Greedy packing in order, as save_pretrained does.
  std::vector<std::vector<size_t>> shards(1);
  uint64_t current = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t size = tensor_bytes(tensors[i].second);
    if (!shards.back().empty() && current + size > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(i);
    current += size;
    total += size;
  }
  std::vector<std::string> written;
  Json::Object weight_map;
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string name = shards.size() == 1 ? kSingleFile
                                                : "model-" + five_digits(s + 1) + "-of-" +
                                                      five_digits(shards.size()) + ".safetensors";
    safetensors::Writer writer;
    writer.set_metadata("format", "pt");
    for (size_t i : shards[s]) {
      const auto& [tensor_name, t] = tensors[i];
      writer.add(tensor_name, t.dtype, t.shape, t.bytes.data(), t.bytes.size());
      weight_map[tensor_name] = name;
    }
    writer.write(files::join(dir, name));
    written.push_back(name);
  }
  if (shards.size() > 1) {
    Json::Object metadata;
    metadata["total_size"] = static_cast<int64_t>(total);
    Json::Object index;
    index["metadata"] = Json(std::move(metadata));
    index["weight_map"] = Json(std::move(weight_map));
    write_file(files::join(dir, kIndexFile), Json(std::move(index)).dump(2) + "\n");
    written.push_back(kIndexFile);
  }
  return written;
}

HfWeights::HfWeights(const std::string& dir) : dir_(dir) {
  const std::string index_path = files::join(dir, kIndexFile);
  std::vector<std::string> names;
  if (files::exists(index_path)) {
    const Json index = parse_json(files::read_file(index_path, "weight index"), index_path);
    std::map<std::string, size_t> opened;
    for (const auto& [tensor, file] : index.at("weight_map", index_path).as_object("weight_map")) {
      const std::string& file_name = file.as_string("weight_map." + tensor);
      if (file_name.find('/') != std::string::npos) {
        throw Error(index_path + ": weight_map." + tensor + " = '" + file_name +
                    "' is not a file in the folder");
      }
      auto found = opened.find(file_name);
      if (found == opened.end()) {
        files_.push_back(std::make_unique<safetensors::File>(
            safetensors::File::open(files::join(dir, file_name))));
        found = opened.emplace(file_name, files_.size() - 1).first;
      }
      if (files_[found->second]->find(tensor) == nullptr) {
        throw Error(index_path + ": names '" + file_name + "' for tensor '" + tensor +
                    "', which that file does not hold");
      }
      where_[tensor] = found->second;
    }
    return;
  }
  const std::string single = files::join(dir, kSingleFile);
  if (!files::exists(single)) {
    throw Error("'" + dir + "' holds neither " + kSingleFile + " nor " + kIndexFile);
  }
  files_.push_back(std::make_unique<safetensors::File>(safetensors::File::open(single)));
  for (const safetensors::TensorInfo& t : files_.front()->tensors()) where_[t.name] = 0;
}

std::vector<std::string> HfWeights::names() const {
  std::vector<std::string> out;
  for (const auto& item : where_) out.push_back(item.first);
  return out;
}

const safetensors::TensorInfo& HfWeights::info(const std::string& name) const {
  const auto found = where_.find(name);
  if (found == where_.end()) throw Error("'" + dir_ + "': no tensor '" + name + "'");
  return files_[found->second]->at(name);
}

const uint8_t* HfWeights::data(const std::string& name) const {
  const auto found = where_.find(name);
  if (found == where_.end()) throw Error("'" + dir_ + "': no tensor '" + name + "'");
  return files_[found->second]->data(info(name));
}

}  // namespace cca::interop
