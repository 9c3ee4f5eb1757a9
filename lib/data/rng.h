// The loader's randomness: a counter-based generator, so a permutation depends only on
// (seed, epoch, stream) and the loader's state needs no hidden generator bytes to resume exactly.
// Written out (not std::uniform_int_distribution) so the order is the same with every standard
// library and on every machine.
#pragma once

#include <cstdint>
#include <vector>

namespace cca::data {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

class Rng {
 public:
  // Independent streams for every (seed, a, b): each key is mixed in through splitmix64.
  Rng(uint64_t seed, uint64_t a, uint64_t b)
      : state_(splitmix64(splitmix64(splitmix64(seed) ^ a) ^ (b * 0xD1B54A32D192ED03ULL))) {}

  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ULL;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  // Uniform in [0, bound) without modulo bias (Lemire's multiply-and-reject).
  uint64_t below(uint64_t bound) {
    uint64_t x = next();
    __uint128_t m = static_cast<__uint128_t>(x) * bound;
    auto low = static_cast<uint64_t>(m);
    if (low < bound) {
      const uint64_t threshold = (0 - bound) % bound;
      while (low < threshold) {
        x = next();
        m = static_cast<__uint128_t>(x) * bound;
        low = static_cast<uint64_t>(m);
      }
    }
    return static_cast<uint64_t>(m >> 64);
  }

 private:
  uint64_t state_;
};

// Fisher-Yates permutation of 0..n-1.
template <class Index>
std::vector<Index> permutation(Index n, Rng& rng) {
  if (n <= 0) return {};  // also keeps n - 1 from wrapping for unsigned Index
  std::vector<Index> order(static_cast<size_t>(n));
  for (Index i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (Index i = n - 1; i > 0; --i) {
    const auto j = static_cast<Index>(rng.below(static_cast<uint64_t>(i) + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

}  // namespace cca::data
