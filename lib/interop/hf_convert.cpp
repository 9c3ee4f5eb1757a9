#include "interop/hf_convert.h"

#include <cstring>
#include <set>

#include "util/error.h"
#include "util/strings.h"

namespace cca::interop {
namespace {

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// A piece's shape: the whole tensor, or one slice along dim 0.
std::vector<int64_t> piece_shape(const std::vector<int64_t>& whole, int64_t slice) {
  if (slice < 0) return whole;
  return std::vector<int64_t>(whole.begin() + 1, whole.end());
}

// The shape of pieces stacked along dim 0; empty when their trailing dims disagree.
std::vector<int64_t> stacked_shape(const std::vector<std::vector<int64_t>>& parts) {
  if (parts.size() == 1) return parts.front();
  std::vector<int64_t> out = parts.front();
  if (out.empty()) return {};
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].size() != out.size() ||
        !std::equal(parts[i].begin() + 1, parts[i].end(), out.begin() + 1)) {
      return {};
    }
    out[0] += parts[i][0];
  }
  return out;
}

bool is_selection_bias(const std::string& name) {
  return name.find("selection_bias") != std::string::npos;
}

bool all_zero(const uint8_t* data, uint64_t bytes) {
  for (uint64_t i = 0; i < bytes; ++i) {
    if (data[i] != 0 && !(data[i] == 0x80 && (i % 4) == 3)) return false;  // -0.0f counts as 0
  }
  return true;
}

}  // namespace

void check_shapes(const Shapes& expected, const Shapes& found, const std::string& source) {
  std::vector<std::string> wrong, missing, unexpected;
  for (const auto& [name, shape] : expected) {
    const auto it = found.find(name);
    if (it == found.end()) {
      missing.push_back(name);
    } else if (it->second != shape) {
      wrong.push_back(name + " (expected " + shape_text(shape) + ", found " +
                      shape_text(it->second) + ")");
    }
  }
  for (const auto& item : found) {
    if (expected.count(item.first) == 0) unexpected.push_back(item.first);
  }
  if (wrong.empty() && missing.empty() && unexpected.empty()) return;
  std::string message = source + ": the weights do not fit the model:";
  if (!wrong.empty()) message += "\n  shape mismatch: " + join(wrong, "\n  shape mismatch: ");
  if (!missing.empty()) message += "\n  missing: " + join(missing, ", ");
  if (!unexpected.empty()) message += "\n  unexpected: " + join(unexpected, ", ");
  throw Error(message);
}

std::vector<std::pair<std::string, HostTensor>> to_hf_tensors(const TensorMap& map,
                                                              const safetensors::File& ours,
                                                              const std::string& dtype) {
  std::set<std::string> used(map.zero_filled.begin(), map.zero_filled.end());
  for (const std::string& name : map.zero_filled) {
    const safetensors::TensorInfo& t = ours.at(name);
    if (!all_zero(ours.data(t), t.bytes())) {
      throw Error(ours.source() + ": '" + name +
                  "' is not zero, and the target class has no "
                  "selection bias (set moe.bias_update_rate 0, or export as remote code)");
    }
  }
  std::vector<std::pair<std::string, HostTensor>> out;
  for (const TensorLink& link : map.links) {
    HostTensor hf;
    std::vector<std::vector<int64_t>> shapes;
    std::string source_dtype;
    for (const TensorPiece& piece : link.pieces) {
      const safetensors::TensorInfo& t = ours.at(piece.ours);
      source_dtype = t.dtype;
      used.insert(piece.ours);
      uint64_t begin = 0, bytes = t.bytes();
      if (piece.slice >= 0) {
        bytes = t.bytes() / static_cast<uint64_t>(t.shape.at(0));
        begin = bytes * static_cast<uint64_t>(piece.slice);
      }
      hf.bytes.append(reinterpret_cast<const char*>(ours.data(t)) + begin, bytes);
      shapes.push_back(piece_shape(t.shape, piece.slice));
    }
    hf.shape = stacked_shape(shapes);
    const bool keep = is_selection_bias(link.pieces.front().ours) || source_dtype != "F32";
    hf.dtype = keep ? source_dtype : dtype;
    hf.bytes = convert_floats(hf.bytes, source_dtype, hf.dtype, link.hf);
    out.emplace_back(link.hf, std::move(hf));
  }
  std::vector<std::string> unplaced;
  for (const safetensors::TensorInfo& t : ours.tensors()) {
    if (used.count(t.name) == 0) unplaced.push_back(t.name);
  }
  if (!unplaced.empty()) {
    throw Error(ours.source() + ": no place in the target class for " + join(unplaced, ", "));
  }
  return out;
}

std::map<std::string, HostTensor> from_hf_tensors(const TensorMap& map, const HfWeights& hf,
                                                  const Shapes& expected) {
  // First the shapes of the HF tensors as the model needs them, all problems at once.
  Shapes wanted, found;
  for (const TensorLink& link : map.links) {
    std::vector<std::vector<int64_t>> parts;
    bool known = true;
    for (const TensorPiece& piece : link.pieces) {
      const auto it = expected.find(piece.ours);
      if (it == expected.end()) {
        known = false;
        break;
      }
      parts.push_back(piece_shape(it->second, piece.slice));
    }
    if (known) wanted[link.hf] = stacked_shape(parts);
  }
  for (const std::string& name : hf.names()) found[name] = hf.info(name).shape;
  check_shapes(wanted, found, "'" + hf.dir() + "'");
  std::map<std::string, HostTensor> out;
  for (const auto& [name, shape] : expected) {
    out[name] = HostTensor{"F32", shape, std::string(numel(shape) * sizeof(float), '\0')};
  }
  std::set<std::string> filled(map.zero_filled.begin(), map.zero_filled.end());
  for (const TensorLink& link : map.links) {
    const safetensors::TensorInfo& info = hf.info(link.hf);
    const std::string raw(reinterpret_cast<const char*>(hf.data(link.hf)), info.bytes());
    const std::string values = convert_floats(raw, info.dtype, "F32", link.hf);
    uint64_t offset = 0;
    for (const TensorPiece& piece : link.pieces) {
      HostTensor& target = out.at(piece.ours);
      const uint64_t bytes = numel(piece_shape(target.shape, piece.slice)) * sizeof(float);
      const uint64_t at = piece.slice < 0 ? 0 : bytes * static_cast<uint64_t>(piece.slice);
      std::memcpy(&target.bytes[at], values.data() + offset, bytes);
      offset += bytes;
      filled.insert(piece.ours);
    }
  }
  std::vector<std::string> unfilled;
  for (const auto& item : expected) {
    if (filled.count(item.first) == 0) unfilled.push_back(item.first);
  }
  if (!unfilled.empty()) {
    throw Error("the HF weights have no tensor for " + join(unfilled, ", "));
  }
  return out;
}

}  // namespace cca::interop
