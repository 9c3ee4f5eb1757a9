#include "data/shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "util/hash.h"
#include "util/error.h"
#include "util/format.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "token shards are little-endian; this reader assumes a little-endian host"
#endif

namespace cca::data {
namespace {

constexpr size_t kWriteBuffer = 1 << 20;

std::string errno_text() {
  return std::strerror(errno);
}

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const auto* p = static_cast<const unsigned char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw Error(format("{}: write failed: {}", path, errno_text()));
    p += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

int32_t shard_version_for_vocab(int64_t vocab_size) {
  return vocab_size <= 65536 ? kShardVersionU16 : kShardVersionU32;
}

size_t shard_token_bytes(int32_t version) {
  if (version == kShardVersionU16) return 2;
  if (version == kShardVersionU32) return 4;
  throw Error(
      format("unsupported shard version {} (1 = uint16 tokens, 2 = uint32 tokens)", version));
}

int64_t shard_vocab_capacity(int32_t version) {
  return shard_token_bytes(version) == 2 ? int64_t{1} << 16 : kMaxShardTokens;
}

std::string bad_token_message(const std::string& path, int64_t position, uint32_t id,
                              int64_t vocab_size) {
  return format(
      "{}: token id {} at position {} is >= the vocabulary size {} (shards made with a larger "
      "tokenizer than the model's vocab_size, or a corrupt shard)",
      path, id, position, vocab_size);
}

// --- ShardWriter -----------------------------------------------------------------------------

ShardWriter::ShardWriter(std::string path, int32_t version, int64_t vocab_size)
    : path_(std::move(path)),
      partial_path_(path_ + ".partial"),
      version_(version),
      vocab_size_(vocab_size) {
  shard_token_bytes(version_);  // validates
  if (vocab_size_ < 0 || vocab_size_ > shard_vocab_capacity(version_)) {
    throw Error(format("{}: a version-{} shard cannot record a vocabulary size of {} (0 .. {})",
                       path_, version_, vocab_size_, shard_vocab_capacity(version_)));
  }
  fd_ = ::open(partial_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(format("{}: cannot create: {}", partial_path_, errno_text()));
  // The header's token count is filled in by finish(); write a placeholder now.
  std::vector<int32_t> header(kShardHeaderInts, 0);
  header[0] = kShardMagic;
  header[1] = version_;
  header[kShardVocabWord] = static_cast<int32_t>(vocab_size_);
  write_all(fd_, header.data(), kShardHeaderBytes, partial_path_);
  buffer_.reserve(kWriteBuffer);
}

ShardWriter::~ShardWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!finished_) ::unlink(partial_path_.c_str());
}

void ShardWriter::append(const int32_t* ids, size_t count) {
  if (finished_) throw Error(format("{}: append after finish", path_));
  if (tokens_ + static_cast<int64_t>(count) > kMaxShardTokens) {
    throw Error(format("{}: a shard holds at most {} tokens (header[2] is an int32)", path_,
                       kMaxShardTokens));
  }
  const uint32_t limit = version_ == kShardVersionU16 ? 0xFFFFu : 0xFFFFFFFFu;
  for (size_t i = 0; i < count; ++i) {
    const int32_t id = ids[i];
    if (id < 0 || static_cast<uint32_t>(id) > limit) {
      throw Error(format("{}: token id {} does not fit a version-{} shard (ids 0..{})", path_, id,
                         version_, limit));
    }
    if (vocab_size_ > 0 && id >= vocab_size_) {
      throw Error(format("{}: token id {} is >= the vocabulary size {} recorded in the header",
                         path_, id, vocab_size_));
    }
    if (version_ == kShardVersionU16) {
      const auto v = static_cast<uint16_t>(id);
      const auto* b = reinterpret_cast<const unsigned char*>(&v);
      buffer_.insert(buffer_.end(), b, b + 2);
    } else {
      const auto v = static_cast<uint32_t>(id);
      const auto* b = reinterpret_cast<const unsigned char*>(&v);
      buffer_.insert(buffer_.end(), b, b + 4);
    }
    if (buffer_.size() >= kWriteBuffer) flush_buffer();
  }
  tokens_ += static_cast<int64_t>(count);
}

void ShardWriter::flush_buffer() {
  write_all(fd_, buffer_.data(), buffer_.size(), partial_path_);
  buffer_.clear();
}

ShardWriter::Result ShardWriter::finish() {
  if (finished_) throw Error(format("{}: finish called twice", path_));
  flush_buffer();
  const auto count = static_cast<int32_t>(tokens_);
  if (::pwrite(fd_, &count, sizeof(count), 2 * sizeof(int32_t)) != sizeof(count)) {
    throw Error(format("{}: cannot write the header: {}", partial_path_, errno_text()));
  }
  if (::fsync(fd_) != 0) throw Error(format("{}: fsync failed: {}", partial_path_, errno_text()));
  if (::close(fd_) != 0) {
    fd_ = -1;
    throw Error(format("{}: close failed: {}", partial_path_, errno_text()));
  }
  fd_ = -1;
  if (std::rename(partial_path_.c_str(), path_.c_str()) != 0) {
    throw Error(format("{}: cannot rename from {}: {}", path_, partial_path_, errno_text()));
  }
  finished_ = true;
  Result result;
  result.path = path_;
  result.tokens = tokens_;
  result.bytes = kShardHeaderBytes + static_cast<uint64_t>(tokens_) * shard_token_bytes(version_);
  // Hash what actually reached the disk, not what we meant to write.
  result.xxh64 = xxh64_file(path_);
  return result;
}

// --- MappedShard -----------------------------------------------------------------------------

MappedShard::MappedShard(std::string path) : path_(std::move(path)) {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(format("{}: cannot open shard: {}", path_, errno_text()));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error(format("{}: cannot stat shard: {}", path_, errno_text()));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(format("{}: not a regular file", path_));
  }
  file_bytes_ = static_cast<uint64_t>(st.st_size);
  if (file_bytes_ < kShardHeaderBytes) {
    ::close(fd);
    throw Error(format("{}: truncated shard: {} bytes, shorter than the {}-byte header", path_,
                       file_bytes_, kShardHeaderBytes));
  }
  void* map = ::mmap(nullptr, file_bytes_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw Error(format("{}: cannot map shard: {}", path_, errno_text()));
  map_ = static_cast<const unsigned char*>(map);

  int32_t head[3];
  std::memcpy(head, map_, sizeof(head));
  try {
    if (head[0] != kShardMagic) {
      throw Error(format("{}: wrong magic number {} (expected {}): not an llm.c/cca token shard",
                         path_, head[0], kShardMagic));
    }
    if (head[1] != kShardVersionU16 && head[1] != kShardVersionU32) {
      throw Error(format("{}: unsupported shard version {} (1 = uint16 tokens, 2 = uint32)", path_,
                         head[1]));
    }
    if (head[2] < 0)
      throw Error(format("{}: negative token count {} in the header", path_, head[2]));
    version_ = head[1];
    tokens_ = head[2];
    const uint64_t expected =
        kShardHeaderBytes + static_cast<uint64_t>(tokens_) * shard_token_bytes(version_);
    if (file_bytes_ < expected) {
      throw Error(format(
          "{}: truncated shard: the header announces {} tokens ({} bytes) but the file has {} "
          "bytes",
          path_, tokens_, expected, file_bytes_));
    }
    if (file_bytes_ > expected) {
      throw Error(format(
          "{}: {} unexpected bytes after the {} tokens the header announces (corrupt header or "
          "not a shard)",
          path_, file_bytes_ - expected, tokens_));
    }
  } catch (...) {
    ::munmap(const_cast<unsigned char*>(map_), file_bytes_);
    map_ = nullptr;
    throw;
  }
}

MappedShard::~MappedShard() {
  if (map_ != nullptr) ::munmap(const_cast<unsigned char*>(map_), file_bytes_);
}

uint32_t MappedShard::token(int64_t index) const {
  if (index < 0 || index >= tokens_) {
    throw Error(format("{}: token index {} outside [0, {})", path_, index, tokens_));
  }
  const unsigned char* body = map_ + kShardHeaderBytes;
  if (version_ == kShardVersionU16) {
    uint16_t v;
    std::memcpy(&v, body + 2 * index, 2);
    return v;
  }
  uint32_t v;
  std::memcpy(&v, body + 4 * index, 4);
  return v;
}

void MappedShard::copy(int64_t start, int64_t count, int32_t* out, int64_t vocab_size) const {
  if (start < 0 || count < 0 || start > tokens_ || count > tokens_ - start) {
    throw Error(format("{}: token range [{}, {}) outside the shard's {} tokens", path_, start,
                       start + count, tokens_));
  }
  const unsigned char* body = map_ + kShardHeaderBytes;
  const uint32_t limit =
      vocab_size > 0 ? static_cast<uint32_t>(std::min<int64_t>(vocab_size, int64_t{0xFFFFFFFF}))
                     : 0xFFFFFFFFu;
  uint32_t worst = 0;
  if (version_ == kShardVersionU16) {
    const auto* src = reinterpret_cast<const uint16_t*>(body) + start;
    for (int64_t i = 0; i < count; ++i) {
      out[i] = src[i];
      worst = std::max<uint32_t>(worst, src[i]);
    }
  } else {
    const auto* src = reinterpret_cast<const uint32_t*>(body) + start;
    for (int64_t i = 0; i < count; ++i) {
      out[i] = static_cast<int32_t>(src[i]);
      worst = std::max(worst, src[i]);
    }
  }
  // One comparison per call keeps the copy loop vectorisable; the slow search runs only on error.
  // Ids past INT32_MAX cannot be represented in a batch whatever the vocabulary.
  if ((vocab_size > 0 && worst >= limit) || worst > INT32_MAX) {
    const int64_t effective = vocab_size > 0 ? vocab_size : int64_t{INT32_MAX} + 1;
    for (int64_t i = 0; i < count; ++i) {
      const uint32_t id = token(start + i);
      if (static_cast<int64_t>(id) >= effective) {
        throw Error(bad_token_message(path_, start + i, id, effective));
      }
    }
  }
}

int64_t MappedShard::find_token_at_least(int64_t vocab_size) const {
  const unsigned char* body = map_ + kShardHeaderBytes;
  for (int64_t i = 0; i < tokens_; ++i) {
    int64_t id;
    if (version_ == kShardVersionU16) {
      id = reinterpret_cast<const uint16_t*>(body)[i];
    } else {
      id = reinterpret_cast<const uint32_t*>(body)[i];
    }
    if (id >= vocab_size) return i;
  }
  return -1;
}

uint64_t MappedShard::checksum() const {
  return xxh64_bytes(map_, file_bytes_);
}

}  // namespace cca::data
