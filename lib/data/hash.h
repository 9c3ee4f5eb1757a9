// XXH64: the 64-bit checksum of shards and tokenizer files in manifests. Implemented here (it is
// short and well specified) so the data library needs no extra dependency; the output matches the
// reference xxHash implementation (`xxhsum -H1`), so a user can check a shard by hand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cca::data {

// Streaming XXH64: update() any number of times, then digest() (which does not end the stream).
class Xxh64 {
 public:
  explicit Xxh64(uint64_t seed = 0);
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  uint64_t acc_[4];
  uint64_t seed_;
  uint64_t total_ = 0;
  unsigned char buffer_[32];
  size_t buffered_ = 0;
};

// Distinct names on purpose: with one overloaded name, xxh64("abc", 0) would pick the pointer form
// and hash zero bytes.
uint64_t xxh64_bytes(const void* data, size_t size, uint64_t seed = 0);
inline uint64_t xxh64(std::string_view text, uint64_t seed = 0) {
  return xxh64_bytes(text.data(), text.size(), seed);
}

// XXH64 of a whole file, read in blocks. Throws cca::Error naming the file when it cannot be read.
uint64_t xxh64_file(const std::string& path);

// 16 lower-case hex digits, and back. parse_hex64 returns false on anything else.
std::string hex64(uint64_t value);
bool parse_hex64(std::string_view text, uint64_t& value);

}  // namespace cca::data
