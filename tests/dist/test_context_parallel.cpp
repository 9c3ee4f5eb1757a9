// Context parallelism (distributed.context_parallel) at the model level, with real Gloo groups:
// every rank of a job is a thread of this process with its own Communicator, as cca-train's
// ranks are processes. For every attention variant, CP = 2, CP = 4 and DP 2 x CP 2 give the
// loss and the parameter gradients of one process over the same batch, with document masking
// off, on, and on with positions restarting per document. The all-gather's backward is checked
// against a single-process reference, and turning CCA's halo off makes the comparison fail.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "dist/communicator.h"
#include "dist/context_group.h"
#include "launch/launcher.h"
#include "model/model_test_util.h"
#include "ops/documents.h"
#include "testing/documents.h"

namespace cca {
namespace {

// c10d's flight recorder (a process-wide ring of recent collectives) is written by every rank's
// thread here, from dozens of groups per test; it is meant for one rank per process, and under
// this load its bookkeeping was seen spinning. The test process turns it off before the first
// group exists (cca-train's ranks are processes and keep it).
const bool kFlightRecorderOff = setenv("TORCH_FR_BUFFER_SIZE", "0", /*overwrite=*/0) == 0;

// Runs `body(rank, communicator)` on `world` threads, each a rank of one Gloo job whose
// context-parallel groups have `context_parallel` ranks.
void run_ranks(int world, int context_parallel,
               const std::function<void(int, dist::Communicator&)>& body) {
  ASSERT_TRUE(kFlightRecorderOff);
  const int port = dist::pick_free_local_port();
  std::vector<std::string> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int rank = 0; rank < world; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        dist::WorldEnvironment env;
        env.distributed = true;
        env.rank = rank;
        env.world_size = world;
        env.local_rank = rank;
        env.local_world_size = world;
        env.master_addr = "127.0.0.1";
        env.master_port = port;
        env.source = "test threads";
        DistributedConfig config = default_config().distributed;
        config.backend = "gloo";
        config.timeout_s = 60;
        config.context_parallel = context_parallel;
        dist::Communicator communicator(env, config, at::Device(at::kCPU));
        body(rank, communicator);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(rank)] = e.what();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int rank = 0; rank < world; ++rank) EXPECT_EQ(errors[rank], "") << "rank " << rank;
}

TEST(ContextParallel, GatherBackwardSumsEveryRanksGradientIntoItsSlice) {
  constexpr int kRanks = 3;
  at::manual_seed(3);
  const at::Tensor x = at::randn({kRanks, 2, 5}, at::kDouble);
  const at::Tensor weights = at::randn({kRanks, kRanks, 2, 5}, at::kDouble);  // per rank
  // One process: rank r's loss reads every rank's slice with its own weights.
  const at::Tensor whole = x.clone().requires_grad_(true);
  at::Tensor loss = at::zeros({}, at::kDouble);
  for (int r = 0; r < kRanks; ++r) loss = loss + (whole * weights[r]).sum();
  loss.backward();
  std::vector<at::Tensor> grads(kRanks), gathered(kRanks);
  run_ranks(kRanks, kRanks, [&](int rank, dist::Communicator& communicator) {
    const at::Tensor mine = x[rank].clone().requires_grad_(true);
    gathered[rank] = gather_from_group(communicator.context_group(), mine);
    (gathered[rank] * weights[rank]).sum().backward();
    grads[rank] = mine.grad();
  });
  for (int r = 0; r < kRanks; ++r) {
    EXPECT_TRUE(at::equal(gathered[r].detach(), x)) << "rank " << r;
    ASSERT_TRUE(grads[r].defined()) << "rank " << r;
    EXPECT_TRUE(at::allclose(grads[r], whole.grad()[r], 1e-12, 1e-12)) << "rank " << r;
  }
}

enum class Masking { off, documents, reset_positions };

struct Layout {
  int replicas;          // data-parallel
  int context_parallel;  // ranks per sequence
};

struct CpCase {
  std::string kind;
  Masking masking;
  Layout layout;
};

std::string cp_case_name(const ::testing::TestParamInfo<CpCase>& info) {
  const CpCase& c = info.param;
  const char* masking = c.masking == Masking::off         ? "nomask"
                        : c.masking == Masking::documents ? "documents"
                                                          : "reset";
  return c.kind + "_" + masking + "_dp" + std::to_string(c.layout.replicas) + "_cp" +
         std::to_string(c.layout.context_parallel);
}

constexpr int64_t kRows = 2;  // sequences in the batch (split over the replicas)
constexpr int64_t kSeq = 48;  // 2 x CP chunks of 6 (CP 4) or 12 (CP 2) tokens
constexpr int64_t kVocab = 64;

struct Batch {
  at::Tensor tokens, targets;
  std::optional<Documents> documents;  // of the whole batch (masking on)
};

// Documents of 3 to 17 tokens, so boundaries fall inside chunks, at chunk starts and across
// several chunks.
Batch make_batch(Masking masking) {
  at::manual_seed(11);
  Batch b;
  const testing::PackedDocuments packed =
      testing::pack_documents({{12, 5, 17, 3, 11}, {6, 6, 16, 9, 11}}, kVocab);
  b.tokens = packed.tokens;
  b.targets = at::randint(0, kVocab, {kRows, kSeq}, at::kLong);
  b.targets.index_put_({0, 7}, -1);  // an ignored target counts in no rank's normaliser
  if (masking != Masking::off) {
    b.documents = find_documents(b.tokens, {testing::kTestSeparator, true},
                                 masking == Masking::reset_positions, at::Device(at::kCPU));
  }
  return b;
}

struct Result {
  double loss = 0;
  std::vector<at::Tensor> grads;
};

int64_t valid_targets(const at::Tensor& targets) {
  return targets.ge(0).sum().item<int64_t>();
}

Result single_process(const Config& config, const Batch& batch) {
  auto model = make_model(config, at::kFloat);  // no recomputation: the plain reference
  const LossBreakdown parts =
      model->loss(batch.tokens, batch.targets, -1, batch.documents ? &*batch.documents : nullptr);
  return {parts.total.item<double>(), testing::parameter_grads(*model, parts.total)};
}

// Rank r holds rows of replica r / CP and its shard of them; each rank's loss is weighted by its
// share of all valid targets, and the gradients and losses are summed over the ranks as the
// trainer's all-reduce sums them.
Result context_parallel(const Config& config, const Batch& batch, Layout layout, bool halo,
                        bool recompute = false) {
  const int world = layout.replicas * layout.context_parallel;
  std::vector<std::shared_ptr<TransformerImpl>> models;
  for (int r = 0; r < world; ++r) {
    models.push_back(make_model(config, at::kFloat));
    models.back()->set_activation_checkpointing(recompute);
  }
  const int64_t all_valid = valid_targets(batch.targets);
  std::vector<Result> results(static_cast<size_t>(world));
  run_ranks(world, layout.context_parallel, [&](int rank, dist::Communicator& communicator) {
    const dist::ContextLayout cl{layout.context_parallel, world};
    const int64_t rows = kRows / layout.replicas, first = cl.replica_of(rank) * rows;
    std::optional<Documents> replica_documents;
    if (batch.documents) {
      replica_documents = *batch.documents;
      replica_documents->ids = batch.documents->ids.narrow(0, first, rows);
      replica_documents->positions = batch.documents->positions.narrow(0, first, rows);
    }
    Documents documents = shard_documents(replica_documents ? &*replica_documents : nullptr, rows,
                                          kSeq, communicator.context_group(), at::Device(at::kCPU));
    auto shard = std::make_shared<SequenceShard>(*documents.shard);
    shard->exchange_halo = halo;
    documents.shard = shard;
    const at::Tensor tokens = shard_tokens(batch.tokens.narrow(0, first, rows), *shard);
    const at::Tensor targets = shard_tokens(batch.targets.narrow(0, first, rows), *shard);
    const LossBreakdown parts = models[rank]->loss(tokens, targets, -1, &documents);
    const double share =
        static_cast<double>(valid_targets(targets)) / static_cast<double>(all_valid);
    const at::Tensor weighted = parts.total * share;
    // backward() and .grad rather than autograd::grad: recomputed blocks accumulate their
    // parameters' gradients from inside the backward pass.
    weighted.backward();
    std::vector<at::Tensor> grads;
    for (const at::Tensor& p : models[rank]->parameters())
      grads.push_back(p.grad().defined() ? p.grad().clone() : at::zeros_like(p));
    results[rank] = {weighted.item<double>(), grads};
  });
  Result sum = results[0];
  for (int r = 1; r < world; ++r) {
    sum.loss += results[r].loss;
    for (size_t i = 0; i < sum.grads.size(); ++i) sum.grads[i] = sum.grads[i] + results[r].grads[i];
  }
  return sum;
}

// The largest gradient difference relative to the largest reference gradient of its tensor.
double worst_gradient_difference(const Result& a, const Result& b) {
  double worst = 0;
  for (size_t i = 0; i < a.grads.size(); ++i) {
    const double scale = std::max(a.grads[i].abs().max().item<double>(), 1e-6);
    worst = std::max(worst, (a.grads[i] - b.grads[i]).abs().max().item<double>() / scale);
  }
  return worst;
}

// Why these tolerances (fp32): the ranks compute the same sums as one process, but softmax rows,
// matmuls over the gathered keys, the convolutions (shifted sums instead of conv1d without
// documents) and the gradient sums over ranks associate differently. Measured over the 72
// cases: at most 1.1e-7 relative on the loss and 8.7e-7 on the gradients (relative to each
// tensor's largest entry); the bounds leave about 20x and 10x of room. A missing halo changes
// them by far more (WithoutTheHaloCcaNoLongerMatches).
constexpr double kLossTolerance = 2e-6;
constexpr double kGradTolerance = 1e-5;

class ContextParallelModel : public ::testing::TestWithParam<CpCase> {};

TEST_P(ContextParallelModel, MatchesOneProcessOnTheSameBatch) {
  const CpCase& c = GetParam();
  const Config config = tiny_config({c.kind, false});
  const Batch batch = make_batch(c.masking);
  const Result one = single_process(config, batch);
  const Result split = context_parallel(config, batch, c.layout, /*halo=*/true);
  EXPECT_NEAR(split.loss, one.loss, kLossTolerance * std::abs(one.loss));
  ASSERT_EQ(split.grads.size(), one.grads.size());
  const double worst = worst_gradient_difference(one, split);
  EXPECT_LT(worst, kGradTolerance);
  std::printf("loss rel. diff %.3g, gradient diff %.3g\n",
              std::abs(split.loss - one.loss) / std::abs(one.loss), worst);
}

std::vector<CpCase> all_cases() {
  std::vector<CpCase> cases;
  for (const char* kind : {"mha", "gqa", "mla", "cca", "ccgqa", "swa", "mha_convs", "gqa_convs"}) {
    for (Masking masking : {Masking::off, Masking::documents, Masking::reset_positions}) {
      for (Layout layout : {Layout{1, 2}, Layout{1, 4}, Layout{2, 2}}) {
        cases.push_back({kind, masking, layout});
      }
    }
  }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Variants, ContextParallelModel, ::testing::ValuesIn(all_cases()),
                         cp_case_name);

// With activation checkpointing every block's forward runs again inside backward, collectives
// included: every rank must still issue them in the same order and get the same gradients.
TEST(ContextParallel, RecomputedBlocksGiveTheSameGradients) {
  for (const char* kind : {"cca", "mla", "gqa_convs"}) {
    const Config config = tiny_config({kind, false});
    const Batch batch = make_batch(Masking::reset_positions);
    const Result one = single_process(config, batch);
    const Result split = context_parallel(config, batch, {1, 2}, /*halo=*/true, /*recompute=*/true);
    EXPECT_NEAR(split.loss, one.loss, kLossTolerance * std::abs(one.loss)) << kind;
    EXPECT_LT(worst_gradient_difference(one, split), kGradTolerance) << kind;
  }
}

// Without the halo, the chunks' convolutions and value shift start from zeros: the comparison
// that passes above must fail, or it would not detect a missing exchange.
TEST(ContextParallel, WithoutTheHaloCcaNoLongerMatches) {
  for (const char* kind : {"cca", "mha_convs"}) {
    const Config config = tiny_config({kind, false});
    for (Masking masking : {Masking::off, Masking::documents}) {
      const Batch batch = make_batch(masking);
      const Result one = single_process(config, batch);
      const Result split = context_parallel(config, batch, {1, 2}, /*halo=*/false);
      const double worst = worst_gradient_difference(one, split);
      EXPECT_GT(worst, 100 * kGradTolerance) << kind;
      std::printf("%s without the halo: loss rel. diff %.3g, gradient diff %.3g\n", kind,
                  std::abs(split.loss - one.loss) / std::abs(one.loss), worst);
      EXPECT_GT(std::abs(split.loss - one.loss), 10 * kLossTolerance * std::abs(one.loss)) << kind;
    }
  }
}

TEST(ContextParallel, AChunkShorterThanTheConvolutionsReachIsRefused) {
  Config config = tiny_config({"cca", false});
  config.attention.settings.set("attention.cca.conv_kernel_0", 4);
  config.attention.settings.set("attention.cca.conv_kernel_1", 4);  // reads 6 tokens back
  Batch batch = make_batch(Masking::off);
  std::string error;
  run_ranks(4, 4, [&](int rank, dist::Communicator& communicator) {
    (void)rank;
    // 16 tokens over 8 chunks: 2 per chunk, fewer than the 6 the convolutions read.
    const Documents documents =
        shard_documents(nullptr, 1, 16, communicator.context_group(), at::Device(at::kCPU));
    if (rank != 0) return;
    auto local = make_model(config, at::kFloat);
    try {
      (void)local->forward(
          shard_tokens(batch.tokens.narrow(0, 0, 1).narrow(1, 0, 16), *documents.shard), nullptr,
          &documents);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  EXPECT_NE(error.find("more than a chunk of 2 tokens"), std::string::npos) << error;
  EXPECT_NE(error.find("distributed.context_parallel"), std::string::npos) << error;
}

}  // namespace
}  // namespace cca
