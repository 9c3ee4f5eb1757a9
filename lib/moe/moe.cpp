#include "moe/moe.h"

#include <ATen/ATen.h>
#include <c10/core/impl/LocalDispatchKeySet.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "moe/token_permutation.h"
#include "ops/autocast.h"
#include "ops/fp8_linear.h"
#include "ops/init.h"
#include "ops/recompute.h"
#include "ops/swiglu.h"
#include "util/error.h"

namespace cca {
namespace {

at::Tensor swiglu(const at::Tensor& x, const at::Tensor& w1, const at::Tensor& w3,
                  const at::Tensor& w2) {
  return at::linear(swiglu_product(at::linear(x, w1), at::linear(x, w3)), w2);
}

// The shared experts see every token, like a dense FFN: fp8 under train.precision: fp8. The
// routed experts stay bf16 (docs/training.md#fp8 says why).
at::Tensor shared_swiglu(const at::Tensor& x, const at::Tensor& w1, const at::Tensor& w3,
                         const at::Tensor& w2) {
  return hidden_linear(swiglu_product(hidden_linear(x, w1), hidden_linear(x, w3)), w2);
}

// The router runs in at least fp32 whatever the activations are (bf16 logits make top-k and the
// z-loss noisy); fp64 inputs keep fp64 so the tests can compare to 1e-10.
at::ScalarType router_dtype(const at::Tensor& x) {
  return at::promote_types(x.scalar_type(), at::kFloat);
}

void check_config(int64_t model_dim, const MoeConfig& c, int64_t hidden) {
  if (model_dim <= 0 || hidden <= 0) throw Error("moe: model_dim and expert_hidden must be > 0");
  if (c.n_experts <= 0) throw Error("moe: n_experts must be > 0 for an MoE layer");
  if (c.top_k < 1 || c.top_k > c.n_experts) {
    throw Error("moe: top_k = " + std::to_string(c.top_k) +
                " must be in [1, n_experts = " + std::to_string(c.n_experts) + "]");
  }
  if (c.shared_experts < 0) throw Error("moe: shared_experts must be >= 0");
  if (c.score != "softmax" && c.score != "sigmoid") {
    throw Error("moe: unknown score function '" + c.score + "' (softmax or sigmoid)");
  }
}

}  // namespace

MoeImpl::MoeImpl(int64_t model_dim, const MoeConfig& config, int64_t expert_hidden, double init_std,
                 double output_init_std)
    : config_(config), model_dim_(model_dim), hidden_(expert_hidden) {
  check_config(model_dim, config, expert_hidden);
  const int64_t n = config.n_experts, E = model_dim, H = expert_hidden;
  router_weight = register_parameter("router_weight", at::empty({n, E}, at::kFloat));
  expert_w1 = register_parameter("expert_w1", at::empty({n, H, E}));
  expert_w3 = register_parameter("expert_w3", at::empty({n, H, E}));
  expert_w2 = register_parameter("expert_w2", at::empty({n, E, H}));
  init_normal(router_weight, init_std);
  init_normal(expert_w1, init_std);
  init_normal(expert_w3, init_std);
  init_normal(expert_w2, output_init_std);
  if (config.shared_experts > 0) {
    // S shared SwiGLUs summed equal one SwiGLU whose hidden units are theirs side by side.
    const int64_t SH = config.shared_experts * H;
    shared_w1 = register_parameter("shared_w1", at::empty({SH, E}));
    shared_w3 = register_parameter("shared_w3", at::empty({SH, E}));
    shared_w2 = register_parameter("shared_w2", at::empty({E, SH}));
    init_normal(shared_w1, init_std);
    init_normal(shared_w3, init_std);
    init_normal(shared_w2, output_init_std);
  }
  // A buffer, not a parameter: checkpointed with the model but never seen by the optimizer.
  selection_bias = register_buffer("selection_bias", at::zeros({n}, at::kFloat));
}

void MoeImpl::to(torch::Dtype dtype, bool non_blocking) {
  const at::Tensor router = router_weight.detach().clone(), bias = selection_bias.clone();
  torch::nn::Module::to(dtype, non_blocking);
  restore_router_precision(router, bias);
}

void MoeImpl::to(torch::Device device, torch::Dtype dtype, bool non_blocking) {
  const at::Tensor router = router_weight.detach().clone(), bias = selection_bias.clone();
  torch::nn::Module::to(device, dtype, non_blocking);
  restore_router_precision(router, bias);
}

// The base cast has already rounded router and bias to the new dtype; put back the values from
// before it at fp32 or wider. set_data keeps the tensors' identity (member handles, optimizer).
void MoeImpl::restore_router_precision(const at::Tensor& router, const at::Tensor& bias) {
  const at::ScalarType dtype = router_dtype(router_weight);
  if (router_weight.scalar_type() == dtype) return;
  router_weight.set_data(router.to(router_weight.device(), dtype));
  selection_bias.set_data(bias.to(selection_bias.device(), dtype));
}

at::Tensor MoeImpl::forward(const at::Tensor& x, MoeLosses& losses, const SequenceShard* shard) {
  TORCH_CHECK(x.dim() == 3 && x.size(2) == model_dim_, "moe: expected x of shape [B, S, ",
              model_dim_, "], got ", x.sizes());
  const at::Tensor tokens = x.reshape({-1, model_dim_});
  const Routing r = route(tokens);
  const SequenceCounts whole = sequence_counts(r, shard);
  losses = router_losses(r, whole);
  record_load(r, whole);
  at::Tensor out = routed_experts(tokens, r);
  if (shared_w1.defined()) out = out + shared_swiglu(tokens, shared_w1, shared_w3, shared_w2);
  return out.view(x.sizes());
}

MoeImpl::Routing MoeImpl::route(const at::Tensor& tokens) const {
  // Autocast would run the router's matmul in bf16; keep it at router precision.
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const at::ScalarType dtype = router_dtype(tokens);
  Routing r;
  r.logits = at::linear(tokens.to(dtype), router_weight.to(dtype));
  r.scores = config_.score == "sigmoid" ? at::sigmoid(r.logits) : at::softmax(r.logits, -1);
  {
    // The bias only chooses experts; no gradient flows through the choice.
    at::NoGradGuard no_grad;
    const at::Tensor biased = r.scores + selection_bias.to(dtype);
    r.experts = std::get<1>(at::topk(biased, config_.top_k, -1));
    r.counts = at::zeros({config_.n_experts}, r.experts.options())
                   .index_add_(0, r.experts.reshape(-1), at::ones_like(r.experts.reshape(-1)));
  }
  r.gates = r.scores.gather(-1, r.experts);
  if (config_.renormalize) r.gates = r.gates / r.gates.sum(-1, /*keepdim=*/true);
  return r;
}

// Under context parallelism every rank of the group holds as many tokens of the sequences as
// any other (two chunks of each row), so the whole sequences have size() times this rank's.
MoeImpl::SequenceCounts MoeImpl::sequence_counts(const Routing& r,
                                                 const SequenceShard* shard) const {
  const int64_t T = r.logits.size(0);
  if (shard == nullptr || !shard->group || shard->group->size() == 1) return {r.counts, T};
  const int64_t whole_tokens = T * shard->group->size();
  if (!shard->reduce_expert_counts) return {r.counts, whole_tokens};  // tests only
  // Counts carry no gradient, so a plain all-gather (no autograd collective) serves.
  return {shard->group->all_gather(r.counts).sum(0), whole_tokens};
}

// Both losses are means over the sequence batch's tokens. Their differentiable parts (the
// scores, the logits) are summed over this rank's tokens and divided by the whole batch's token
// count: the ranks of a context-parallel group then add up to the one-device loss, and each
// rank's backward reaches exactly its own tokens. On one device `whole` is this rank's tokens.
MoeLosses MoeImpl::router_losses(const Routing& r, const SequenceCounts& whole) const {
  const double tokens = static_cast<double>(whole.tokens);
  // f_e: share of the routed slots (a constant); P_e: mean probability over all experts, with
  // sigmoid scores normalised per token so P sums to 1 like softmax's.
  const at::Tensor f =
      whole.counts.to(r.scores.scalar_type()) / (tokens * static_cast<double>(config_.top_k));
  const at::Tensor probs =
      config_.score == "sigmoid" ? r.scores / r.scores.sum(-1, /*keepdim=*/true) : r.scores;
  MoeLosses losses;
  losses.load_balance =
      static_cast<double>(config_.n_experts) * (f * (probs.sum(0) / tokens)).sum();
  losses.router_z = at::logsumexp(r.logits, {-1}).square().sum() / tokens;
  return losses;
}

// The logged load is the whole sequences'; the bias's pending counts are this rank's tokens
// (the trainer sums them over all ranks before the update).
void MoeImpl::record_load(const Routing& r, const SequenceCounts& whole) {
  const at::Tensor& counts = r.counts;
  last_load_ = whole.counts.to(at::kFloat) /
               static_cast<double>(std::max<int64_t>(whole.tokens * config_.top_k, 1));
  // Evaluation passes must not steer the bias: only training forwards count, once each (not
  // again when activation checkpointing recomputes the layer).
  if (!is_training() || recomputing_activations()) return;
  if (!load_since_update_.defined() || load_since_update_.device() != counts.device()) {
    load_since_update_ = at::zeros_like(counts);
  }
  load_since_update_.add_(counts);
}

void MoeImpl::update_selection_bias() {
  if (!load_since_update_.defined()) return;
  if (config_.bias_update_rate > 0) {
    at::NoGradGuard no_grad;
    const at::Tensor load = load_since_update_.to(selection_bias.scalar_type());
    // Under-loaded experts (below the mean) gain bias, overloaded ones lose it.
    selection_bias.add_(at::sign(load.mean() - load).to(selection_bias.device()),
                        config_.bias_update_rate);
  }
  load_since_update_.zero_();
}

at::Tensor MoeImpl::routed_experts(const at::Tensor& tokens, const Routing& r) const {
  const SlotOrder order = sort_slots_by_expert(r.experts);
  // Under autocast the experts run in its dtype, which the grouped GEMM needs on its inputs.
  const std::optional<at::ScalarType> compute = autocast_dtype(tokens);
  const at::Tensor permuted = dispatch_to_experts(compute ? tokens.to(*compute) : tokens, order);
  const at::Tensor outputs =
      use_grouped(permuted) ? expert_grouped(permuted, r.counts) : expert_loop(permuted, r.counts);
  // The k choices of a token are added in a fixed order (no scatter-add), in the experts' dtype:
  // in fp32 the combine was two casts and four fp32 passes over [T, k, E] each way.
  return combine_from_rows(outputs, r.gates, order).to(tokens.scalar_type());
}

bool MoeImpl::use_grouped(const at::Tensor& x) const {
  if (kernel_ != MoeExpertKernel::kAuto) return kernel_ == MoeExpertKernel::kGrouped;
  const bool half = x.scalar_type() == at::kBFloat16 || x.scalar_type() == at::kHalf;
  // The CUTLASS grouped GEMM needs 16-byte-aligned row strides.
  return x.is_cuda() && half && model_dim_ % 8 == 0 && hidden_ % 8 == 0;
}

// One SwiGLU per expert on its slice. Every expert runs, also on an empty slice, so each expert
// weight always gets a (possibly zero) gradient.
at::Tensor MoeImpl::expert_loop(const at::Tensor& permuted, const at::Tensor& counts) const {
  const at::Tensor host_counts = counts.cpu();
  const int64_t* count = host_counts.data_ptr<int64_t>();
  std::vector<at::Tensor> outputs;
  outputs.reserve(config_.n_experts);
  int64_t start = 0;
  for (int64_t e = 0; e < config_.n_experts; ++e) {
    const at::Tensor rows = permuted.narrow(0, start, count[e]);
    outputs.push_back(swiglu(rows, expert_w1[e], expert_w3[e], expert_w2[e]));
    start += count[e];
  }
  return at::cat(outputs, 0);
}

// The same computation as expert_loop in three grouped GEMMs; `offs` holds the end row of each
// expert's slice. Needs no host sync (the counts stay on the device).
at::Tensor MoeImpl::expert_grouped(const at::Tensor& permuted, const at::Tensor& counts) const {
  const at::Tensor offs = at::cumsum(counts, 0).to(at::kInt);
  const at::Tensor x = permuted.contiguous();
  const auto weight = [&x](const at::Tensor& w) {
    return w.scalar_type() == x.scalar_type() ? w : autocast_weight(w, x.scalar_type());
  };
  const at::Tensor gate = at::_grouped_mm(x, weight(expert_w1).transpose(1, 2), offs);
  const at::Tensor up = at::_grouped_mm(x, weight(expert_w3).transpose(1, 2), offs);
  return at::_grouped_mm(swiglu_product(gate, up), weight(expert_w2).transpose(1, 2), offs);
}

}  // namespace cca
