// The fixed validation set: the same sequences at every evaluation, split over ranks.
// Torch-free, like the training loader (data/loader.h).
#pragma once

#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"

namespace cca::data {

// The first `tokens` tokens of the validation shards, in path order, as tokens / seq_len
// sequences (each with one extra token for its last target). Rank r takes sequences r, r + W, ...
class ValidationSet {
 public:
  ValidationSet(const ShardSet& data, int64_t tokens, int64_t seq_len, int64_t rank = 0,
                int64_t world_size = 1);

  int64_t sequences() const { return sequences_; }  // this rank's
  int64_t total_sequences() const { return total_sequences_; }
  int64_t batches(int64_t batch_size) const;
  // Batch `index` of `batch_size` sequences (the last one may be shorter).
  Batch batch(int64_t index, int64_t batch_size) const;

 private:
  int64_t seq_len_;
  int64_t sequences_ = 0;
  int64_t total_sequences_ = 0;
  std::vector<int32_t> rows_;  // sequences_ x (seq_len_ + 1)
};

}  // namespace cca::data
