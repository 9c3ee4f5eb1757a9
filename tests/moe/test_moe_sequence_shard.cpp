// The MoE layer under context parallelism (moe/moe.h, MoeImpl::forward with a SequenceShard),
// without processes: a stand-in group hands each "rank" the other ranks' expert counts, which a
// first pass over their tokens recorded. The ranks' losses and router gradients must add up to
// the layer's on all tokens at once, and its logged load must be all tokens' (float64, 1e-12).
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "moe/moe.h"
#include "ops/sequence_shard.h"

namespace cca {
namespace {

// Rank `rank` of a group whose other ranks contributed `counts[r]` (this rank's entry is
// replaced by what it passes in). Only all_gather is used by the MoE layer.
class RecordedGroup : public SequenceGroup {
 public:
  RecordedGroup(int rank, std::vector<at::Tensor> counts)
      : rank_(rank), counts_(std::move(counts)) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(counts_.size()); }
  at::Tensor all_gather(const at::Tensor& mine) override {
    std::vector<at::Tensor> all = counts_;
    all[static_cast<size_t>(rank_)] = mine;
    return at::stack(all);
  }
  at::Tensor reduce_scatter(const at::Tensor& /*full*/) override {
    ADD_FAILURE() << "the MoE layer needs no reduce-scatter";
    return {};
  }

 private:
  int rank_;
  std::vector<at::Tensor> counts_;
};

MoeConfig shard_config(const std::string& score) {
  MoeConfig c{};
  c.n_experts = 6;
  c.top_k = 2;
  c.shared_experts = 1;
  c.every = 1;
  c.score = score;
  c.renormalize = score == "sigmoid";
  c.aux_loss_coef = 0.5;
  c.z_loss_coef = 0.05;
  return c;
}

std::shared_ptr<MoeImpl> make_layer(const MoeConfig& c) {
  at::manual_seed(4);
  auto m = std::make_shared<MoeImpl>(8, c, 12, 0.5, 0.5);
  m->to(at::kDouble);
  return m;
}

// Expert counts of `tokens` [1, T, E] as the layer routes them (a training-mode forward).
at::Tensor routed_counts(const MoeConfig& c, const at::Tensor& tokens) {
  auto m = make_layer(c);
  MoeLosses unused;
  at::NoGradGuard no_grad;
  (void)m->forward(tokens, unused);
  return m->pending_expert_counts().clone();
}

struct ShardCase {
  std::string score;
  bool reduce;
};

struct Sums {
  double load_balance = 0, router_z = 0;
  at::Tensor router_grad;
};

// Every rank's share of `x` [1, T, E] (T split into `ranks` equal parts) through its own layer,
// their losses and router gradients summed.
Sums split_over_ranks(const MoeConfig& c, const at::Tensor& x, int ranks, bool reduce,
                      std::vector<at::Tensor>* loads = nullptr) {
  const std::vector<at::Tensor> parts = x.chunk(ranks, 1);
  std::vector<at::Tensor> counts;
  for (const at::Tensor& part : parts) counts.push_back(routed_counts(c, part));
  Sums sums;
  for (int r = 0; r < ranks; ++r) {
    auto m = make_layer(c);
    SequenceShard shard;
    shard.group = std::make_shared<RecordedGroup>(r, counts);
    shard.reduce_expert_counts = reduce;
    MoeLosses losses;
    (void)m->forward(parts[static_cast<size_t>(r)], losses, &shard);
    (c.aux_loss_coef * losses.load_balance + c.z_loss_coef * losses.router_z).backward();
    sums.load_balance += losses.load_balance.item<double>();
    sums.router_z += losses.router_z.item<double>();
    const at::Tensor grad = m->router_weight.grad();
    sums.router_grad = sums.router_grad.defined() ? sums.router_grad + grad : grad;
    if (loads) loads->push_back(m->last_expert_load());
  }
  return sums;
}

Sums whole(const MoeConfig& c, const at::Tensor& x, at::Tensor* load = nullptr) {
  auto m = make_layer(c);
  MoeLosses losses;
  (void)m->forward(x, losses);
  (c.aux_loss_coef * losses.load_balance + c.z_loss_coef * losses.router_z).backward();
  if (load) *load = m->last_expert_load();
  return {losses.load_balance.item<double>(), losses.router_z.item<double>(),
          m->router_weight.grad()};
}

at::Tensor shard_input() {
  at::manual_seed(9);
  return at::randn({1, 24, 8}, at::kDouble);
}

TEST(MoeSequenceShard, RanksLossesAndRouterGradientsAddUpToTheWholeSequences) {
  for (const char* score : {"softmax", "sigmoid"}) {
    const MoeConfig c = shard_config(score);
    const at::Tensor x = shard_input();
    at::Tensor whole_load;
    const Sums one = whole(c, x, &whole_load);
    for (int ranks : {2, 3, 4}) {
      std::vector<at::Tensor> loads;
      const Sums split = split_over_ranks(c, x, ranks, /*reduce=*/true, &loads);
      EXPECT_NEAR(split.load_balance, one.load_balance, 1e-12) << score << " " << ranks;
      EXPECT_NEAR(split.router_z, one.router_z, 1e-12) << score << " " << ranks;
      EXPECT_TRUE(at::allclose(split.router_grad, one.router_grad, 1e-10, 1e-12))
          << score << " " << ranks;
      // Every rank logs the whole sequences' load.
      for (const at::Tensor& load : loads) EXPECT_TRUE(at::allclose(load, whole_load, 0, 1e-12));
    }
  }
}

// Each rank's own token fractions (the statistics context parallelism must not use): the
// Switch loss no longer adds up, while the z-loss (a plain mean) still does.
TEST(MoeSequenceShard, PerShardTokenFractionsDoNotAddUp) {
  const MoeConfig c = shard_config("softmax");
  const at::Tensor x = shard_input();
  const Sums one = whole(c, x);
  const Sums split = split_over_ranks(c, x, 4, /*reduce=*/false);
  EXPECT_GT(std::abs(split.load_balance - one.load_balance), 1e-3);
  EXPECT_NEAR(split.router_z, one.router_z, 1e-12);
  EXPECT_FALSE(at::allclose(split.router_grad, one.router_grad, 1e-6, 1e-8));
}

// A group of one is a single device: no collective, the plain losses.
TEST(MoeSequenceShard, AGroupOfOneIsTheSingleDeviceLayer) {
  const MoeConfig c = shard_config("sigmoid");
  const at::Tensor x = shard_input();
  const Sums one = whole(c, x);
  const Sums split = split_over_ranks(c, x, 1, /*reduce=*/true);
  EXPECT_EQ(split.load_balance, one.load_balance);
  EXPECT_EQ(split.router_z, one.router_z);
  EXPECT_TRUE(at::equal(split.router_grad, one.router_grad));
}

}  // namespace
}  // namespace cca
