// The one way cca-train splits CPU work over threads (checksums of shards, tokenizing a chunk of
// documents): a parallel loop over an index range, each worker a contiguous block of it. (The
// loader's prefetch thread is a single producer, not a split of work.)
#pragma once

#include <cstddef>
#include <functional>

namespace cca {

// `requested` when positive, else one per hardware thread (at least 1): what a `threads` option
// of 0 means everywhere.
int thread_count(int requested);

// Calls body(worker, index) for every index in [0, count), split into min(workers, count)
// contiguous blocks, one per thread (block 0 on the calling thread), and waits for all of them.
// `worker` (0 .. workers-1) lets the body keep per-thread scratch state. A worker stops at the
// first exception of its block; parallel_for then rethrows the exception of the lowest index, so
// the error a user sees is the first in index order, whatever the thread count.
void parallel_for(size_t count, size_t workers,
                  const std::function<void(size_t worker, size_t index)>& body);

}  // namespace cca
