// Two ranks in one process (one thread each, Gloo over 127.0.0.1): bucketed gradient all-reduce
// gives the sum of both ranks' gradients, starts buckets during backward, skips communication
// for earlier micro-batches, and a rank that never joins a collective ends it with an error
// naming the rank and the operation.
#include <gtest/gtest.h>

#include <functional>
#include <future>
#include <thread>

#include "dist/communicator.h"
#include "dist/gradient_buckets.h"
#include "launch/launcher.h"
#include "util/error.h"

namespace cca::dist {
namespace {

// A chain of small layers: backward produces the gradients from the last layer to the first.
struct Chain {
  std::vector<at::Tensor> weights;
  explicit Chain(int layers) {
    at::manual_seed(7);
    for (int i = 0; i < layers; ++i) weights.push_back(at::randn({16, 16}).requires_grad_(true));
  }
  std::vector<NamedTensor> named() const {
    std::vector<NamedTensor> out;
    for (size_t i = 0; i < weights.size(); ++i)
      out.push_back({"w" + std::to_string(i), weights[i]});
    return out;
  }
  void backward(const at::Tensor& x) const {
    at::Tensor h = x;
    for (const at::Tensor& w : weights) h = at::tanh(at::matmul(h, w));
    h.square().sum().backward();
  }
};

at::Tensor input_of(int rank, int micro_batch) {
  at::manual_seed(100 + 10 * rank + micro_batch);
  return at::randn({4, 16});
}

DistributedConfig fast_timeout() {
  DistributedConfig config;
  config.backend = "gloo";
  config.bucket_mb = 1;
  config.timeout_s = 3;
  config.verify_every = 0;
  config.zero1 = false;
  return config;
}

// Runs `body(rank, communicator)` on two threads joined through a fresh port.
void run_two_ranks(const std::function<void(int, Communicator&)>& body) {
  const int port = pick_free_local_port();
  auto rank_main = [&](int rank) {
    WorldEnvironment world;
    world.distributed = true;
    world.rank = rank;
    world.world_size = 2;
    world.local_rank = rank;
    world.local_world_size = 2;
    world.master_addr = "127.0.0.1";
    world.master_port = port;
    world.source = "test";
    Communicator communicator(world, fast_timeout(), at::Device(at::kCPU));
    body(rank, communicator);
  };
  auto other = std::async(std::launch::async, rank_main, 1);
  rank_main(0);
  other.get();
}

std::vector<at::Tensor> reference_sum(int layers, int micro_batches) {
  std::vector<at::Tensor> sum;
  for (int rank = 0; rank < 2; ++rank) {
    Chain chain(layers);
    for (int m = 0; m < micro_batches; ++m) chain.backward(input_of(rank, m));
    for (size_t i = 0; i < chain.weights.size(); ++i) {
      if (sum.size() <= i) sum.push_back(at::zeros_like(chain.weights[i]));
      sum[i] += chain.weights[i].grad();
    }
  }
  return sum;
}

TEST(GradientBuckets, SumOverRanksWithBucketsStartedDuringBackward) {
  constexpr int kLayers = 6;
  const std::vector<at::Tensor> expected = reference_sum(kLayers, 1);
  std::vector<std::vector<at::Tensor>> got(2);
  std::vector<int64_t> early(2), buckets(2);
  // Built before the threads start: the global generator is not for concurrent use.
  std::vector<Chain> chains = {Chain(kLayers), Chain(kLayers)};
  const std::vector<at::Tensor> inputs = {input_of(0, 0), input_of(1, 0)};
  run_two_ranks([&](int rank, Communicator& communicator) {
    Chain& chain = chains[rank];
    // 1 KiB per bucket: each 16x16 fp32 weight (1 KiB) gets a bucket of its own.
    GradientBuckets grads(communicator, chain.named(), 1024);
    chain.backward(inputs[rank]);
    grads.finish(1);
    for (const at::Tensor& w : chain.weights) got[rank].push_back(w.grad().clone());
    early[rank] = grads.started_during_backward();
    buckets[rank] = grads.bucket_count();
  });
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_EQ(buckets[rank], kLayers);
    // The first layer's gradient is the last to arrive; every other bucket starts earlier.
    EXPECT_GE(early[rank], kLayers - 1) << "rank " << rank;
    for (int i = 0; i < kLayers; ++i) {
      EXPECT_TRUE(at::allclose(got[rank][i], expected[i], 1e-5, 1e-6)) << "w" << i;
    }
  }
  EXPECT_TRUE(at::equal(got[0][0], got[1][0]));  // every rank holds the same sum
}

TEST(GradientBuckets, EarlierMicroBatchesAccumulateWithoutCommunicating) {
  constexpr int kLayers = 3;
  const std::vector<at::Tensor> expected = reference_sum(kLayers, 2);
  std::vector<std::vector<at::Tensor>> got(2);
  std::vector<Chain> chains = {Chain(kLayers), Chain(kLayers)};
  const std::vector<std::vector<at::Tensor>> inputs = {{input_of(0, 0), input_of(0, 1)},
                                                       {input_of(1, 0), input_of(1, 1)}};
  run_two_ranks([&](int rank, Communicator& communicator) {
    Chain& chain = chains[rank];
    GradientBuckets grads(communicator, chain.named(), 1 << 20);  // one bucket
    grads.set_last_micro_batch(false);
    chain.backward(inputs[rank][0]);
    grads.set_last_micro_batch(true);
    chain.backward(inputs[rank][1]);
    grads.finish(1);
    for (const at::Tensor& w : chain.weights) got[rank].push_back(w.grad().clone());
  });
  for (int rank = 0; rank < 2; ++rank) {
    for (int i = 0; i < kLayers; ++i) {
      EXPECT_TRUE(at::allclose(got[rank][i], expected[i], 1e-5, 1e-6)) << "w" << i;
    }
  }
}

TEST(Communicator, ARankThatNeverJoinsEndsTheCollectiveWithANamedError) {
  std::string message = "(no error)";
  double seconds = 0;
  run_two_ranks([&](int rank, Communicator& communicator) {
    if (rank == 1) {  // stays away until rank 0 has given up
      std::this_thread::sleep_for(std::chrono::seconds(5));
      return;
    }
    const auto start = std::chrono::steady_clock::now();
    try {
      communicator.sum(1, "all-reduce of the test value");
    } catch (const Error& e) {
      message = e.what();
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  });
  EXPECT_NE(message.find("rank 0 of 2: all-reduce of the test value failed"), std::string::npos)
      << message;
  EXPECT_LT(seconds, 3 + 5.5) << "distributed.timeout_s is 3";
}

}  // namespace
}  // namespace cca::dist
