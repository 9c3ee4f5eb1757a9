#include "checkpoint/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>
#include <string_view>

#include "util/error.h"
#include "util/format.h"
#include "util/json.h"

namespace cca::safetensors {
namespace {

struct DtypeEntry {
  const char* name;
  size_t size;
};

constexpr DtypeEntry kDtypes[] = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"I16", 2}, {"U16", 2},
                                  {"I32", 4},  {"U32", 4}, {"I64", 8}, {"U64", 8}, {"F16", 2},
                                  {"BF16", 2}, {"F32", 4}, {"F64", 8}};

const char* const kMetadataKey = "__metadata__";
const char* const kDtypeList = "BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, BF16, F32, F64";

// Writes of at most this size keep each syscall well under Linux's 2 GiB per-call cap.
constexpr size_t kMaxWriteChunk = size_t{1} << 30;
// Tensors smaller than this are gathered into one buffer so a model with hundreds of small norms
// and biases costs a few writes, not hundreds.
constexpr size_t kCoalesceBytes = size_t{8} << 20;

const DtypeEntry* find_dtype(const std::string& name) {
  for (const DtypeEntry& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

std::string errno_text() {
  return std::strerror(errno);
}

// Offset of the first byte that is not part of well-formed UTF-8 (overlong forms, surrogates and
// code points above U+10FFFF included), or npos.
size_t find_invalid_utf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (text.size() - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(text[i + k]);
      if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// numel * item size, or false when a partial product leaves int64 (then TensorInfo::numel(),
// which multiplies in the same order, cannot overflow either).
bool byte_count(const std::vector<int64_t>& shape, size_t item, uint64_t& bytes) {
  int64_t n = static_cast<int64_t>(item);
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) return false;
  }
  bytes = n;
  return true;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

// A hostile value quoted in a message, cut short so a 100 MB string cannot flood the terminal.
std::string brief(const Json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, std::min(size, kMaxWriteChunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(format("{}: write failed: {}", path, errno_text()));
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void append_le64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

}  // namespace

size_t dtype_size(const std::string& dtype) {
  const DtypeEntry* d = find_dtype(dtype);
  if (d == nullptr) {
    throw Error(format("unknown safetensors dtype \"{}\" (expected one of {})", dtype, kDtypeList));
  }
  return d->size;
}

int64_t TensorInfo::numel() const {
  return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<int64_t>());
}

// --- Writer ------------------------------------------------------------------------------------

void Writer::add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
                 const void* data, size_t bytes) {
  const std::string what = format("safetensors writer: tensor '{}'", name);
  if (name.empty())
    throw Error("safetensors writer: empty tensor name (expected a non-empty name)");
  if (name == kMetadataKey) throw Error(what + ": the name is reserved for the metadata");
  if (find_invalid_utf8(name) != std::string_view::npos)
    throw Error(what + ": the name is not valid UTF-8");
  if (index_.count(name) != 0) throw Error(what + " added twice (expected unique names)");
  const size_t item = dtype_size(dtype);
  for (int64_t d : shape) {
    if (d < 0) throw Error(format("{}: negative dimension in shape {}", what, shape_text(shape)));
  }
  uint64_t expected = 0;
  if (!byte_count(shape, item, expected))
    throw Error(format("{}: shape {} overflows int64", what, shape_text(shape)));
  if (bytes != expected) {
    throw Error(format("{}: got {} bytes (expected {} for {} {})", what, bytes, expected, dtype,
                       shape_text(shape)));
  }
  if (data == nullptr && bytes > 0) throw Error(what + ": null data");
  index_.emplace(name, tensors_.size());
  tensors_.push_back({name, dtype, std::move(shape), buffer_bytes_, buffer_bytes_ + bytes});
  data_.push_back(data);
  buffer_bytes_ += bytes;
}

void Writer::set_metadata(const std::string& key, const std::string& value) {
  if (find_invalid_utf8(key) != std::string_view::npos ||
      find_invalid_utf8(value) != std::string_view::npos) {
    throw Error(format("safetensors writer: metadata '{}' is not valid UTF-8", key));
  }
  metadata_[key] = value;
}

// The length prefix and the JSON header, padded with spaces so the buffer starts 8-byte aligned.
std::string Writer::header() const {
  std::string json = "{";
  if (!metadata_.empty()) {
    append_json_string(json, kMetadataKey);
    json += ":{";
    bool first = true;
    for (const auto& [key, value] : metadata_) {
      if (!first) json += ',';
      first = false;
      append_json_string(json, key);
      json += ':';
      append_json_string(json, value);
    }
    json += '}';
  }
  for (const TensorInfo& t : tensors_) {
    if (json.size() > 1) json += ',';
    append_json_string(json, t.name);
    json += format(":{{\"dtype\":\"{}\",\"shape\":{},\"data_offsets\":[{},{}]}}", t.dtype,
                   shape_text(t.shape), t.begin, t.end);
  }
  json += '}';
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out;
  append_le64(out, json.size());
  return out + json;
}

std::string Writer::to_bytes() const {
  std::string out = header();
  out.reserve(out.size() + buffer_bytes_);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    out.append(static_cast<const char*>(data_[i]), tensors_[i].bytes());
  }
  return out;
}

FileDigest Writer::write(const std::string& path) const {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(format("{}: cannot create: {}", path, errno_text()));
  Xxh64 hash;
  FileDigest digest;
  const auto send = [&](const void* data, size_t size) {
    hash.update(data, size);
    write_all(fd, data, size, path);
    digest.bytes += size;
  };
  try {
    std::string pending = header();
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const size_t bytes = tensors_[i].bytes();
      if (bytes < kCoalesceBytes) {
        pending.append(static_cast<const char*>(data_[i]), bytes);
        if (pending.size() < kCoalesceBytes) continue;
      }
      send(pending.data(), pending.size());
      pending.clear();
      if (bytes >= kCoalesceBytes) send(data_[i], bytes);
    }
    send(pending.data(), pending.size());
    if (::fsync(fd) != 0) throw Error(format("{}: fsync failed: {}", path, errno_text()));
  } catch (...) {
    ::close(fd);
    ::unlink(path.c_str());  // a half-written file must not look like a checkpoint piece
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(path.c_str());
    throw Error(format("{}: close failed: {}", path, errno_text()));
  }
  digest.xxh64 = hash.digest();
  return digest;
}

// --- File --------------------------------------------------------------------------------------

// Either a read-only mapping of a file or an in-memory copy; it never moves, so pointers into it
// survive moves of the File.
class File::Storage {
 public:
  Storage(void* map, uint64_t length)
      : map_(map), bytes(static_cast<const uint8_t*>(map)), size(length) {}
  explicit Storage(std::string data)
      : owned_(std::move(data)),
        bytes(reinterpret_cast<const uint8_t*>(owned_.data())),
        size(owned_.size()) {}
  ~Storage() {
    if (map_ != nullptr) ::munmap(map_, size);
  }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

 private:
  void* map_ = nullptr;
  std::string owned_;

 public:
  const uint8_t* bytes;
  uint64_t size;
};

namespace {

// The header length, checked against the file before anything is parsed.
uint64_t header_length(const uint8_t* bytes, uint64_t size, const std::string& source) {
  if (size < 8) {
    throw Error(
        format("{}: file is {} bytes, too short for a safetensors file (expected an 8-byte "
               "header length, a JSON header and the tensor data)",
               source, size));
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | bytes[i];
  if (n == 0) throw Error(format("{}: header length is 0 (expected a JSON object)", source));
  if (n > kMaxHeaderBytes) {
    throw Error(
        format("{}: header length {} exceeds the {}-byte limit (expected a safetensors "
               "file; a corrupt or foreign file?)",
               source, n, kMaxHeaderBytes));
  }
  if (n > size - 8) {
    throw Error(
        format("{}: header length {} runs past the end of the file, which has {} bytes "
               "after the length (expected at most that; truncated file?)",
               source, n, size - 8));
  }
  return n;
}

int64_t non_negative_int(const Json& value) {
  if (value.type() != Json::Type::number) return -1;
  try {
    return value.as_int("", 0);
  } catch (const Error&) {
    return -1;  // a fraction, a negative number or out of the int64 range
  }
}

std::vector<int64_t> parse_shape(const Json* shape, const std::string& what) {
  auto bad = [&]() {
    return Error(format("{}: shape is {} (expected an array of non-negative integers)", what,
                        shape == nullptr ? std::string("missing") : brief(*shape)));
  };
  if (shape == nullptr || !shape->is_array()) throw bad();
  std::vector<int64_t> out;
  for (const Json& d : shape->as_array("shape")) {
    out.push_back(non_negative_int(d));
    if (out.back() < 0) throw bad();
  }
  return out;
}

void parse_offsets(const Json* offsets, const std::string& what, TensorInfo& t) {
  auto bad = [&]() {
    return Error(
        format("{}: data_offsets is {} (expected two non-negative integers [begin, end] "
               "with begin <= end)",
               what, offsets == nullptr ? std::string("missing") : brief(*offsets)));
  };
  if (offsets == nullptr || !offsets->is_array() || offsets->as_array("").size() != 2) throw bad();
  const int64_t begin = non_negative_int(offsets->as_array("")[0]);
  const int64_t end = non_negative_int(offsets->as_array("")[1]);
  if (begin < 0 || end < 0 || begin > end) throw bad();
  t.begin = static_cast<uint64_t>(begin);
  t.end = static_cast<uint64_t>(end);
}

TensorInfo parse_entry(const std::string& name, const Json& entry, uint64_t buffer_bytes,
                       const std::string& source) {
  const std::string what = format("{}: tensor '{}'", source, name);
  if (!entry.is_object()) {
    throw Error(format("{} is {} (expected an object with dtype, shape and data_offsets)", what,
                       brief(entry)));
  }
  TensorInfo t;
  t.name = name;
  const Json* dtype = entry.find("dtype");
  if (dtype == nullptr || !dtype->is_string() || find_dtype(dtype->as_string("")) == nullptr) {
    throw Error(format("{}: dtype is {} (expected one of {})", what,
                       dtype == nullptr ? std::string("missing") : brief(*dtype), kDtypeList));
  }
  t.dtype = dtype->as_string("");
  t.shape = parse_shape(entry.find("shape"), what);
  parse_offsets(entry.find("data_offsets"), what, t);
  uint64_t expected = 0;
  if (!byte_count(t.shape, dtype_size(t.dtype), expected)) {
    throw Error(format("{}: shape {} has more bytes than fit in 63 bits (expected a real tensor)",
                       what, shape_text(t.shape)));
  }
  if (t.bytes() != expected) {
    throw Error(format("{}: data_offsets [{}, {}] span {} bytes (expected {} for {} {})", what,
                       t.begin, t.end, t.bytes(), expected, t.dtype, shape_text(t.shape)));
  }
  if (t.end > buffer_bytes) {
    throw Error(
        format("{}: data_offsets [{}, {}] run past the end of the {}-byte data buffer "
               "(expected end <= {}; truncated file?)",
               what, t.begin, t.end, buffer_bytes, buffer_bytes));
  }
  return t;
}

std::map<std::string, std::string> parse_metadata(const Json& value, const std::string& source) {
  if (!value.is_object()) {
    throw Error(format("{}: __metadata__ is {} (expected an object of string values)", source,
                       brief(value)));
  }
  std::map<std::string, std::string> out;
  for (const auto& [key, v] : value.as_object("")) {
    if (!v.is_string()) {
      throw Error(format("{}: __metadata__ value of '{}' is {} (expected a string)", source, key,
                         brief(v)));
    }
    out.emplace(key, v.as_string(""));
  }
  return out;
}

// The spec requires the tensors to index the whole buffer, each byte exactly once. Sorting by
// (begin, end) puts zero-size tensors before a tensor starting at the same offset.
void check_coverage(std::vector<TensorInfo>& tensors, uint64_t buffer_bytes,
                    const std::string& source) {
  std::stable_sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : tensors) {
    if (t.begin < covered) {
      throw Error(
          format("{}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap (expected each byte "
                 "of the data buffer to belong to exactly one tensor)",
                 source, previous->name, previous->begin, previous->end, t.name, t.begin, t.end));
    }
    if (t.begin > covered) {
      throw Error(
          format("{}: bytes [{}, {}) of the data buffer belong to no tensor (expected the "
                 "tensors to cover the buffer without holes)",
                 source, covered, t.begin));
    }
    covered = t.end;
    if (t.end > t.begin || previous == nullptr) previous = &t;
  }
  if (covered != buffer_bytes) {
    throw Error(
        format("{}: bytes [{}, {}) at the end of the data buffer belong to no tensor "
               "(expected the tensors to cover the buffer without holes)",
               source, covered, buffer_bytes));
  }
}

}  // namespace

void File::validate() {
  const uint64_t n = header_length(storage_->bytes, storage_->size, source_);
  const std::string_view header(reinterpret_cast<const char*>(storage_->bytes) + 8, n);
  const size_t bad = find_invalid_utf8(header);
  if (bad != std::string_view::npos) {
    throw Error(format("{}: header byte {} is not valid UTF-8 (expected a UTF-8 JSON header)",
                       source_, bad));
  }
  const Json root = parse_json(header, source_ + " header");
  if (!root.is_object()) {
    throw Error(
        format("{}: header is {} (expected a JSON object of tensors)", source_, brief(root)));
  }
  buffer_ = storage_->bytes + 8 + n;
  buffer_bytes_ = storage_->size - 8 - n;
  for (const auto& [key, value] : root.as_object("")) {
    if (key == kMetadataKey) {
      metadata_ = parse_metadata(value, source_);
    } else {
      tensors_.push_back(parse_entry(key, value, buffer_bytes_, source_));
    }
  }
  check_coverage(tensors_, buffer_bytes_, source_);
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
}

File::File(std::unique_ptr<Storage> storage, std::string source)
    : storage_(std::move(storage)), source_(std::move(source)) {
  validate();
}
File::File(File&&) noexcept = default;
File& File::operator=(File&&) noexcept = default;
File::~File() = default;

File File::parse(std::string bytes, const std::string& source) {
  return File(std::make_unique<Storage>(std::move(bytes)), source);
}

File File::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(format("{}: cannot open: {}", path, errno_text()));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string why = errno_text();
    ::close(fd);
    throw Error(format("{}: cannot read: {}", path, why));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(format("{}: not a regular file (expected a safetensors file)", path));
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    header_length(nullptr, size, path);  // throws the same message as parse() would
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const std::string map_error = map == MAP_FAILED ? errno_text() : "";
  ::close(fd);
  if (map == MAP_FAILED) throw Error(format("{}: cannot map: {}", path, map_error));
  return File(std::make_unique<Storage>(map, size), path);
}

const TensorInfo* File::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::at(const std::string& name) const {
  const TensorInfo* t = find(name);
  if (t == nullptr) throw Error(format("{}: no tensor '{}'", source_, name));
  return *t;
}

const uint8_t* File::data(const TensorInfo& tensor) const {
  if (tensor.begin > tensor.end || tensor.end > buffer_bytes_) {
    throw Error(format("{}: tensor '{}' bytes [{}, {}) lie outside the {}-byte buffer", source_,
                       tensor.name, tensor.begin, tensor.end, buffer_bytes_));
  }
  return buffer_ + tensor.begin;
}

}  // namespace cca::safetensors
