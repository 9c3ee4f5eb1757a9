// Reading and writing the safetensors format (github.com/huggingface/safetensors, "Format"), so
// checkpoint tensors open in any tool that reads it:
//
//   8 bytes   N, a little-endian uint64
//   N bytes   a UTF-8 JSON object: {"<name>": {"dtype": "F32", "shape": [2, 3],
//             "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "value", ...}}
//   the rest  the byte buffer; offsets are relative to its start, and the tensors must cover it
//             exactly, without holes or overlaps
//
// Torch-free on purpose (cca_checkpoint): tensors are dtype names, shapes and raw bytes.
// The reader treats every file as hostile: any malformation is a cca::Error naming the file,
// never a crash, an out-of-bounds read or an allocation larger than the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "util/hash.h"

namespace cca::safetensors {

// Headers larger than this are refused before they are parsed (the reference reader's limit).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Bytes per element of a dtype name (BOOL U8 I8 I16 U16 I32 U32 I64 U64 F16 BF16 F32 F64);
// throws cca::Error naming the supported ones for any other name.
size_t dtype_size(const std::string& dtype);

struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;  // [] is a scalar (one element)
  uint64_t begin = 0;          // byte offsets into the buffer, end exclusive
  uint64_t end = 0;

  uint64_t bytes() const { return end - begin; }
  int64_t numel() const;
};

// Collects tensors and metadata, then writes one file. The tensor bytes are not copied: each
// `data` passed to add() must stay alive and unchanged until write() or to_bytes() returns.
class Writer {
 public:
  // Throws cca::Error for an empty, duplicate or reserved ("__metadata__") name, an unknown
  // dtype, a negative dimension, or `bytes` != numel * dtype_size(dtype).
  void add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
           const void* data, size_t bytes);
  // Replaces an earlier value of the same key.
  void set_metadata(const std::string& key, const std::string& value);

  // Writes the file (tensors in the order added, after a header padded with spaces to a multiple
  // of 8 bytes) and fsyncs it. It writes `path` in place: atomicity is the caller's job (the
  // checkpoint writer writes into a staging folder that it renames when complete). Returns the
  // size and XXH64 of the bytes written, hashed on the way out.
  FileDigest write(const std::string& path) const;
  // The same bytes as write() would produce, in memory.
  std::string to_bytes() const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }

 private:
  std::string header() const;

  std::vector<TensorInfo> tensors_;
  std::vector<const void*> data_;  // parallel to tensors_
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  uint64_t buffer_bytes_ = 0;
};

// A validated safetensors file, memory-mapped or held in memory. Movable, not copyable; the
// pointers data() returns live as long as the File (or the File it was moved into).
class File {
 public:
  // Maps `path` read-only and validates it. Throws cca::Error "<path>: <what> (expected ...)".
  static File open(const std::string& path);
  // Validates `bytes` (kept in the File); `source` names it in error messages.
  static File parse(std::string bytes, const std::string& source);

  File(File&&) noexcept;
  File& operator=(File&&) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  const std::string& source() const { return source_; }
  // In buffer order (for files from our Writer: the order the tensors were added).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  // Throws cca::Error "<source>: no tensor '<name>'".
  const TensorInfo& at(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The tensor's first byte. Not necessarily aligned to the element size (the format allows
  // neither padding between tensors nor, from other writers, a padded header): copy out with
  // memcpy rather than casting.
  const uint8_t* data(const TensorInfo& tensor) const;
  uint64_t buffer_bytes() const { return buffer_bytes_; }

 private:
  class Storage;
  File(std::unique_ptr<Storage> storage, std::string source);
  void validate();

  std::unique_ptr<Storage> storage_;
  std::string source_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
  const uint8_t* buffer_ = nullptr;  // start of the byte buffer inside storage_
  uint64_t buffer_bytes_ = 0;
};

}  // namespace cca::safetensors
