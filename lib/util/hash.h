// XXH64: the 64-bit checksum of data shards, tokenizer files and checkpoint files in their
// manifests, computed by libxxhash (Debian's libxxhash-dev, linked statically). The output is the
// reference `xxhsum -H1`, so a user can check a file by hand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace cca {

// Streaming XXH64: update() any number of times, then digest() (which does not end the stream).
class Xxh64 {
 public:
  explicit Xxh64(uint64_t seed = 0);
  ~Xxh64();
  Xxh64(const Xxh64&) = delete;
  Xxh64& operator=(const Xxh64&) = delete;
  void update(const void* data, size_t size);
  uint64_t digest() const;

 private:
  struct State;  // libxxhash's, kept out of this header so its users need no xxhash.h
  std::unique_ptr<State> state_;
};

// Distinct names on purpose: with one overloaded name, xxh64("abc", 0) would pick the pointer form
// and hash zero bytes.
uint64_t xxh64_bytes(const void* data, size_t size, uint64_t seed = 0);
inline uint64_t xxh64(std::string_view text, uint64_t seed = 0) {
  return xxh64_bytes(text.data(), text.size(), seed);
}

// XXH64 of a whole file, read in blocks. Throws cca::Error naming the file when it cannot be read.
uint64_t xxh64_file(const std::string& path);

// What a writer saw go out: the file's size and the XXH64 of its bytes, hashed as they were
// written (so a checksum never needs a second read of a file just written).
struct FileDigest {
  uint64_t bytes = 0;
  uint64_t xxh64 = 0;
};

// 16 lower-case hex digits, and back. parse_hex64 returns false on anything else.
std::string hex64(uint64_t value);
bool parse_hex64(std::string_view text, uint64_t& value);

}  // namespace cca
