// The CUDA side of core attention and of whole models: every SDPA backend against the exact CPU
// math, and each variant's forward on the GPU against the CPU. Skipped without a GPU.
#include <gtest/gtest.h>
#include <torch/autograd.h>

#include <ATen/cuda/CUDAContext.h>

#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "attention/core.h"
#include "config/config.h"
#include "model/transformer.h"
#include "ops/device.h"
#include "testing/checks.h"

namespace cca {
namespace {

#define REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: GPU path not exercised"

// ‖got − want‖ / ‖want‖, or the plain ‖got − want‖ where the exact answer is zero (with a single
// key, softmax has no gradient with respect to q or k).
double relative_error(const at::Tensor& got, const at::Tensor& want) {
  const double difference = (got.to(at::kDouble) - want.to(at::kDouble)).norm().item<double>();
  const double scale = want.to(at::kDouble).norm().item<double>();
  return scale > 0 ? difference / scale : difference;
}

TEST(CoreAttentionCuda, EveryBackendMatchesExactMath) {
  REQUIRE_GPU();
  at::manual_seed(0);
  struct Shape {
    int64_t hq, hkv, sq, sk, d;
  };
  for (const Shape s : {Shape{8, 8, 256, 256, 128}, Shape{8, 2, 256, 256, 128},
                        Shape{4, 1, 1, 300, 64}, Shape{4, 4, 17, 300, 64}}) {
    const at::Tensor q = at::randn({2, s.hq, s.sq, s.d});
    const at::Tensor k = at::randn({2, s.hkv, s.sk, s.d});
    const at::Tensor v = at::randn({2, s.hkv, s.sk, s.d});
    const at::Tensor want =
        core_attention(q.to(at::kDouble), k.to(at::kDouble), v.to(at::kDouble), 0.1);
    for (CoreBackend backend : {CoreBackend::automatic, CoreBackend::math, CoreBackend::flash,
                                CoreBackend::cudnn, CoreBackend::efficient}) {
      const auto opts = at::TensorOptions().device(at::kCUDA).dtype(at::kBFloat16);
      at::Tensor got;
      try {
        got = core_attention(q.to(opts), k.to(opts), v.to(opts), 0.1, backend);
      } catch (const c10::Error& e) {
        // A backend may not support a shape (e.g. masks); auto and math must always work.
        ASSERT_TRUE(backend != CoreBackend::automatic && backend != CoreBackend::math) << e.what();
        continue;
      }
      EXPECT_LT(relative_error(got.cpu(), want), 2e-2)
          << "backend " << static_cast<int>(backend) << " hq " << s.hq << " hkv " << s.hkv << " sq "
          << s.sq << " sk " << s.sk;
    }
  }
}

// The q, k, v one variant hands core_attention, in the layouts its layer builds them.
struct CoreCase {
  std::string name;
  int64_t b, hq, hkv, sq, sk, dqk, dv;
  enum Layout { bshd, mla_train, mla_absorbed } layout;
  at::ScalarType dtype = at::kBFloat16;
};

std::vector<at::Tensor> make_qkv(const CoreCase& c, const at::TensorOptions& opts) {
  at::manual_seed(5);
  // Rounded to the case's dtype first, so a float64 reference sees the same values.
  const auto rnd = [&](std::vector<int64_t> shape) {
    return at::randn(shape).to(c.dtype).to(opts);
  };
  switch (c.layout) {
    case CoreCase::mla_train: {  // q = cat(q_nope, q_rope); v a slice of kv_b_proj's output
      const at::Tensor kv = rnd({c.b, c.sk, c.hkv, c.dqk - 64 + c.dv});
      return {rnd({c.b, c.hq, c.sq, c.dqk}), rnd({c.b, c.sk, c.hkv, c.dqk}).transpose(1, 2),
              kv.narrow(-1, c.dqk - 64, c.dv).transpose(1, 2)};
    }
    case CoreCase::mla_absorbed: {  // one latent "head": keys [c_kv | k_rope], values c_kv
      const at::Tensor keys = rnd({c.b, c.sk, c.dqk}).unsqueeze(1);
      return {rnd({c.b, c.hq, c.sq, c.dqk}), keys, keys.narrow(-1, 0, c.dv)};
    }
    default:  // projections viewed [B, S, H, d], transposed to [B, H, S, d]
      return {rnd({c.b, c.sq, c.hq, c.dqk}).transpose(1, 2),
              rnd({c.b, c.sk, c.hkv, c.dqk}).transpose(1, 2),
              rnd({c.b, c.sk, c.hkv, c.dv}).transpose(1, 2)};
  }
}

// Output and q/k/v gradients of core_attention with `backend`, as float64 on the CPU.
std::vector<at::Tensor> run_core(const CoreCase& c, const at::TensorOptions& opts,
                                 CoreBackend backend) {
  std::vector<at::Tensor> leaves;
  for (const at::Tensor& t : make_qkv(c, opts)) leaves.push_back(t.detach().requires_grad_(true));
  const at::Tensor out = core_attention(leaves[0], leaves[1], leaves[2], 0.125, backend);
  at::manual_seed(6);
  const at::Tensor grad = at::randn(out.sizes()).to(c.dtype).to(opts);
  std::vector<at::Tensor> result = {out};
  for (const at::Tensor& g : torch::autograd::grad({out}, leaves, {grad})) result.push_back(g);
  for (at::Tensor& t : result) t = t.detach().to(at::kDouble).cpu();
  return result;
}

// attention.core: auto against exact math for every variant's shapes (training, chunked prefill,
// decode), forward and backward; and the rule: cuDNN on sm90+ where it takes the call, never
// where it cannot (MLA's absorbed decode has head dim r_kv + rope = 1024).
TEST(CoreAttentionCuda, AutoMatchesMathForEveryVariantShape) {
  REQUIRE_GPU();
  const bool hopper = at::cuda::getCurrentDeviceProperties()->major >= 9;
  using L = CoreCase;
  const std::vector<CoreCase> cases = {
      {"mha train", 2, 8, 8, 256, 256, 128, 128, L::bshd},
      {"gqa/ccgqa train", 2, 8, 2, 256, 256, 128, 128, L::bshd},
      {"cca train d64", 2, 4, 4, 200, 200, 64, 64, L::bshd},
      {"mha chunked prefill", 2, 8, 8, 17, 300, 128, 128, L::bshd},
      {"gqa decode", 2, 8, 2, 1, 300, 128, 128, L::bshd},
      {"first token", 2, 8, 2, 1, 1, 128, 128, L::bshd},
      {"mla train 192/128", 2, 4, 4, 256, 256, 192, 128, L::mla_train},
      {"mla absorbed decode", 2, 4, 1, 1, 300, 1024, 960, L::mla_absorbed},
      {"mla absorbed chunk", 2, 4, 1, 17, 300, 1024, 960, L::mla_absorbed},
      {"mla absorbed small", 2, 4, 1, 1, 128, 96, 64, L::mla_absorbed},
      {"mha train fp32", 2, 8, 8, 128, 128, 64, 64, L::bshd, at::kFloat},
  };
  for (const CoreCase& c : cases) {
    const auto gpu = at::TensorOptions().device(at::kCUDA).dtype(c.dtype);
    const std::vector<at::Tensor> qkv = make_qkv(c, gpu);
    const CoreBackend chosen = resolve_core_backend(qkv[0], qkv[1], qkv[2]);
    std::cout << "[auto] " << c.name << " -> " << core_backend_name(chosen) << std::endl;
    EXPECT_NE(chosen, CoreBackend::automatic) << c.name;
    const bool cudnn_expected = hopper && (c.name == "mha train" || c.name == "gqa/ccgqa train");
    if (cudnn_expected) {
      EXPECT_EQ(chosen, CoreBackend::cudnn) << c.name;
    }
    if (c.dqk > 256 || c.sk == 1 || c.sq != c.sk || c.dtype == at::kFloat) {
      EXPECT_NE(chosen, CoreBackend::cudnn) << c.name;
    }
    const std::vector<at::Tensor> got = run_core(c, gpu, CoreBackend::automatic);
    const std::vector<at::Tensor> want =
        run_core(c, at::TensorOptions(at::kDouble), CoreBackend::math);
    const char* part[] = {"output", "dq", "dk", "dv"};
    for (size_t i = 0; i < got.size(); ++i) {
      const double error = relative_error(got[i], want[i]);
      std::cout << "       " << part[i] << " relative error " << error << std::endl;
      EXPECT_LT(error, 2e-2) << c.name << " " << part[i];
    }
  }
}

TEST(ModelCuda, EveryVariantMatchesCpuInBf16) {
  REQUIRE_GPU();
  for (const std::string kind : {"mha", "gqa", "mla", "cca", "ccgqa", "swa"}) {
    Config c = default_config();
    c.model.d_model = 256;
    c.model.n_layers = 2;
    c.model.vocab_size = 512;
    c.attention.kind = kind;
    c.attention.n_heads = 4;
    c.attention.n_kv_heads = kind == "gqa" || kind == "swa" ? 2 : 0;
    c.attention.rope_fraction = kind == "cca" || kind == "ccgqa" ? 0.5 : 1.0;
    c.attention.settings.set("attention.swa.window", 48);  // decode crosses it
    c.attention.settings.set("attention.cca.q_compression", 2);
    c.attention.settings.set("attention.cca.kv_compression", kind == "ccgqa" ? 4 : 0);
    c.attention.settings.set("attention.mla.q_lora_rank", 128);
    c.attention.settings.set("attention.mla.kv_lora_rank", 64);
    c.attention.settings.set("attention.mla.qk_nope_head_dim", 32);
    c.attention.settings.set("attention.mla.qk_rope_head_dim", 32);
    c.attention.settings.set("attention.mla.v_head_dim", 64);
    c.moe.n_experts = 4;
    c.moe.first_dense_layers = 1;
    at::manual_seed(2);
    TransformerImpl model(c);
    const at::Tensor tokens = at::randint(0, 512, {2, 128}, at::kLong);
    const at::Tensor want = model.forward(tokens).to(at::kDouble);
    model.to(at::Device(at::kCUDA), at::kBFloat16);
    const at::Tensor got = model.forward(tokens.to(at::kCUDA)).cpu();
    EXPECT_LT(relative_error(got, want), 5e-2) << kind;
    // Decode on the GPU reproduces the GPU prefill's last logits.
    ModelCache cache = model.new_cache();
    model.forward(tokens.narrow(1, 0, 127).to(at::kCUDA), &cache);
    const at::Tensor last = model.forward(tokens.narrow(1, 127, 1).to(at::kCUDA), &cache).cpu();
    EXPECT_LT(relative_error(last.select(1, 0), got.select(1, 127)), 5e-2) << kind;
  }
}

}  // namespace
}  // namespace cca
