#include "util/hash.h"

#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>

#include "util/error.h"
#include "util/format.h"

namespace cca {

// Through XXH64_createState, not a by-value XXH64_state_t: that layout is private to the library
// version (XXH_STATIC_LINKING_ONLY), this works with whichever one is linked.
struct Xxh64::State {
  XXH64_state_t* xxh = XXH64_createState();
  ~State() { XXH64_freeState(xxh); }
};

Xxh64::Xxh64(uint64_t seed) : state_(std::make_unique<State>()) {
  if (state_->xxh == nullptr) throw std::bad_alloc();
  XXH64_reset(state_->xxh, seed);
}

Xxh64::~Xxh64() = default;

void Xxh64::update(const void* data, size_t size) {
  XXH64_update(state_->xxh, data, size);
}

uint64_t Xxh64::digest() const {
  return XXH64_digest(state_->xxh);
}

uint64_t xxh64_bytes(const void* data, size_t size, uint64_t seed) {
  return XXH64(data, size, seed);
}

uint64_t xxh64_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) throw Error(format("{}: cannot open: {}", path, std::strerror(errno)));
  Xxh64 state;
  std::unique_ptr<char[]> block(new char[1 << 20]);
  size_t got;
  while ((got = std::fread(block.get(), 1, 1 << 20, file.get())) > 0)
    state.update(block.get(), got);
  if (std::ferror(file.get()))
    throw Error(format("{}: read error: {}", path, std::strerror(errno)));
  return state.digest();
}

std::string hex64(uint64_t value) {
  static const char* const digits = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, value >>= 4) out[i] = digits[value & 15];
  return out;
}

bool parse_hex64(std::string_view text, uint64_t& value) {
  if (text.size() != 16) return false;
  uint64_t v = 0;
  for (char c : text) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return false;
    }
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  value = v;
  return true;
}

}  // namespace cca
