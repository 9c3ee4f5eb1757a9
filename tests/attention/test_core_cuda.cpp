// The CUDA side of core attention and of whole models: every SDPA backend against the exact CPU
// math, and each variant's forward on the GPU against the CPU. Skipped without a GPU.
#include <gtest/gtest.h>

#include "attention/core.h"
#include "config/config.h"
#include "model/transformer.h"
#include "ops/device.h"
#include "testing/checks.h"

namespace cca {
namespace {

#define REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: GPU path not exercised"

double relative_error(const at::Tensor& got, const at::Tensor& want) {
  return (got.to(at::kDouble) - want.to(at::kDouble)).norm().item<double>() /
         want.to(at::kDouble).norm().item<double>();
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

TEST(ModelCuda, EveryVariantMatchesCpuInBf16) {
  REQUIRE_GPU();
  for (const std::string kind : {"mha", "gqa", "mla", "cca", "ccgqa"}) {
    Config c = default_config();
    c.model.d_model = 256;
    c.model.n_layers = 2;
    c.model.vocab_size = 512;
    c.attention.kind = kind;
    c.attention.n_heads = 4;
    c.attention.n_kv_heads = kind == "gqa" ? 2 : 0;
    c.attention.rope_fraction = kind == "cca" || kind == "ccgqa" ? 0.5 : 1.0;
    c.attention.cca.q_compression = 2;
    c.attention.cca.kv_compression = kind == "ccgqa" ? 4 : 0;
    c.attention.mla.q_lora_rank = 128;
    c.attention.mla.kv_lora_rank = 64;
    c.attention.mla.qk_nope_head_dim = 32;
    c.attention.mla.qk_rope_head_dim = 32;
    c.attention.mla.v_head_dim = 64;
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
