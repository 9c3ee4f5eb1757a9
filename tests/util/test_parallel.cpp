// The one parallel loop: every index exactly once, contiguous blocks per worker, and the error a
// caller sees is the first in index order whatever the thread count.
#include <gtest/gtest.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "util/parallel.h"

namespace cca {
namespace {

TEST(Parallel, ThreadCountTakesARequestOrTheHardware) {
  EXPECT_EQ(thread_count(3), 3);
  const int hardware = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_EQ(thread_count(0), hardware > 0 ? hardware : 1);
  EXPECT_EQ(thread_count(-2), thread_count(0));
}

TEST(Parallel, VisitsEveryIndexOnceInContiguousBlocks) {
  for (size_t workers : {1u, 2u, 3u, 8u, 200u}) {
    const size_t count = 101;
    std::vector<int> visits(count, 0);
    std::vector<std::vector<size_t>> by_worker(workers);
    std::mutex mutex;
    parallel_for(count, workers, [&](size_t worker, size_t i) {
      const std::lock_guard<std::mutex> lock(mutex);
      ASSERT_LT(worker, std::min(workers, count));
      ++visits[i];
      by_worker[worker].push_back(i);
    });
    for (size_t i = 0; i < count; ++i) EXPECT_EQ(visits[i], 1) << "index " << i;
    size_t next = 0;  // block w starts where block w-1 ended
    for (const std::vector<size_t>& block : by_worker) {
      for (size_t i : block) EXPECT_EQ(i, next++) << workers << " workers";
    }
  }
}

TEST(Parallel, NothingToDoCallsNothing) {
  bool called = false;
  parallel_for(0, 4, [&](size_t, size_t) { called = true; });
  parallel_for(5, 0, [&](size_t, size_t) { called = true; });
  EXPECT_FALSE(called);
}

TEST(Parallel, RethrowsTheFirstFailureInIndexOrder) {
  for (size_t workers : {1u, 2u, 4u, 16u}) {
    try {
      parallel_for(100, workers, [](size_t, size_t i) {
        if (i == 17 || i == 40 || i == 99) throw std::runtime_error("index " + std::to_string(i));
      });
      ADD_FAILURE() << "did not throw with " << workers << " workers";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), "index 17") << workers << " workers";
    }
  }
}

}  // namespace
}  // namespace cca
