#include "data/validation_set.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"
#include "util/format.h"

namespace cca::data {

namespace {

// Copies tokens [start, start + count) of the shards' concatenation.
void copy_stream(const ShardSet& data, int64_t start, int64_t count, int32_t* out) {
  for (const auto& shard : data.shards) {
    if (count == 0) return;
    if (start >= shard->tokens()) {
      start -= shard->tokens();
      continue;
    }
    const int64_t take = std::min(count, shard->tokens() - start);
    shard->copy(start, take, out, data.vocab_size);
    out += take;
    count -= take;
    start = 0;
  }
  if (count > 0) throw Error(format("{}: read past the end of the shards", data.spec));
}

}  // namespace

ValidationSet::ValidationSet(const ShardSet& data, int64_t tokens, int64_t seq_len, int64_t rank,
                             int64_t world_size)
    : seq_len_(seq_len) {
  if (seq_len < 1) throw Error(format("sequence length {} must be >= 1", seq_len));
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    throw Error(format("rank {} of world size {} is invalid", rank, world_size));
  }
  if (tokens < 0) throw Error(format("validation tokens {} must be >= 0", tokens));
  total_sequences_ = tokens / seq_len;
  if (tokens > 0 && total_sequences_ == 0) {
    throw Error(format("validation tokens {} are fewer than one sequence of {}", tokens, seq_len));
  }
  if (total_sequences_ == 0) return;
  const int64_t needed = total_sequences_ * seq_len + 1;
  if (needed > data.tokens) {
    throw Error(
        format("{}: the validation set needs {} tokens ({} sequences of {} + 1) but the "
               "validation shards hold {}; lower data.val_tokens",
               data.spec, needed, total_sequences_, seq_len, data.tokens));
  }
  sequences_ = (total_sequences_ - rank + world_size - 1) / world_size;
  const int64_t row = seq_len + 1;
  rows_.resize(static_cast<size_t>(sequences_ * row));
  for (int64_t j = 0; j < sequences_; ++j) {
    const int64_t i = rank + j * world_size;
    copy_stream(data, i * seq_len, row, rows_.data() + j * row);
  }
}

int64_t ValidationSet::batches(int64_t batch_size) const {
  if (batch_size < 1) throw Error(format("batch size {} must be >= 1", batch_size));
  return (sequences_ + batch_size - 1) / batch_size;
}

Batch ValidationSet::batch(int64_t index, int64_t batch_size) const {
  if (index < 0 || index >= batches(batch_size)) {
    throw Error(format("validation batch {} outside [0, {})", index, batches(batch_size)));
  }
  Batch b;
  const int64_t first = index * batch_size;
  b.batch_size = std::min(batch_size, sequences_ - first);
  b.seq_len = seq_len_;
  b.inputs.resize(static_cast<size_t>(b.batch_size * seq_len_));
  b.targets.resize(b.inputs.size());
  const int64_t row = seq_len_ + 1;
  for (int64_t k = 0; k < b.batch_size; ++k) {
    const int32_t* src = rows_.data() + (first + k) * row;
    std::memcpy(b.inputs.data() + k * seq_len_, src, seq_len_ * sizeof(int32_t));
    std::memcpy(b.targets.data() + k * seq_len_, src + 1, seq_len_ * sizeof(int32_t));
  }
  return b;
}

}  // namespace cca::data
