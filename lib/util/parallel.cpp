#include "util/parallel.h"

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

namespace cca {

int thread_count(int requested) {
  if (requested > 0) return requested;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

void parallel_for(size_t count, size_t workers,
                  const std::function<void(size_t worker, size_t index)>& body) {
  workers = std::min(workers, count);
  if (workers == 0) return;
  // Blocks are in index order and each stops at its first failure, so the lowest failing block's
  // error is the first in index order.
  std::vector<std::exception_ptr> errors(workers);
  auto run_block = [&](size_t w) {
    try {
      for (size_t i = w * count / workers; i < (w + 1) * count / workers; ++i) body(w, i);
    } catch (...) {
      errors[w] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  try {
    for (size_t w = 1; w < workers; ++w) threads.emplace_back(run_block, w);
  } catch (...) {
    // No thread to be had: join those started (a running std::thread must not be destroyed).
    for (std::thread& t : threads) t.join();
    throw;
  }
  run_block(0);
  for (std::thread& t : threads) t.join();
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace cca
