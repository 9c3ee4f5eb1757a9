#include "attention/core.h"

#include <ATen/Context.h>

#include <array>
#include <limits>

#include "util/error.h"

namespace cca {
namespace {

// Boolean mask [Sq, Sk], true where query i (at absolute position Sk - Sq + i) may see key j.
at::Tensor causal_mask(int64_t sq, int64_t sk, const at::Device& device) {
  const auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  const at::Tensor query_pos = at::arange(sk - sq, sk, opts).unsqueeze(1);
  const at::Tensor key_pos = at::arange(0, sk, opts).unsqueeze(0);
  return key_pos.le(query_pos);
}

at::Tensor math_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          double scale) {
  const int64_t group = q.size(1) / k.size(1);
  const at::ScalarType compute = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor kk = group > 1 ? k.repeat_interleave(group, 1) : k;
  at::Tensor vv = group > 1 ? v.repeat_interleave(group, 1) : v;
  at::Tensor scores = at::matmul(q.to(compute), kk.to(compute).transpose(-2, -1)).mul(scale);
  const at::Tensor mask = causal_mask(q.size(2), k.size(2), q.device());
  scores = scores.masked_fill(mask.logical_not(), -std::numeric_limits<double>::infinity());
  const at::Tensor probs = at::softmax(scores, -1);
  return at::matmul(probs, vv.to(compute)).to(q.scalar_type());
}

// Sets LibTorch's global SDPA backend switches for one call and restores them afterwards.
class SdpBackendScope {
 public:
  explicit SdpBackendScope(CoreBackend backend) {
    at::Context& ctx = at::globalContext();
    saved_ = {ctx.userEnabledFlashSDP(), ctx.userEnabledMemEfficientSDP(), ctx.userEnabledMathSDP(),
              ctx.userEnabledCuDNNSDP()};
    if (backend == CoreBackend::automatic) return;
    ctx.setSDPUseFlash(backend == CoreBackend::flash);
    ctx.setSDPUseMemEfficient(backend == CoreBackend::efficient);
    ctx.setSDPUseMath(backend == CoreBackend::math);
    ctx.setSDPUseCuDNN(backend == CoreBackend::cudnn);
  }
  ~SdpBackendScope() {
    at::Context& ctx = at::globalContext();
    ctx.setSDPUseFlash(saved_[0]);
    ctx.setSDPUseMemEfficient(saved_[1]);
    ctx.setSDPUseMath(saved_[2]);
    ctx.setSDPUseCuDNN(saved_[3]);
  }
  SdpBackendScope(const SdpBackendScope&) = delete;
  SdpBackendScope& operator=(const SdpBackendScope&) = delete;

 private:
  std::array<bool, 4> saved_{};
};

at::Tensor sdpa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          double scale, CoreBackend backend) {
  const int64_t sq = q.size(2);
  const int64_t sk = k.size(2);
  const bool gqa = q.size(1) != k.size(1);
  SdpBackendScope scope(backend);
  if (sq == sk) {
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/true, scale, gqa);
  }
  if (sq == 1) {  // one new token sees every cached key
    return at::scaled_dot_product_attention(q, k, v, {}, 0.0, false, scale, gqa);
  }
  return at::scaled_dot_product_attention(q, k, v, causal_mask(sq, sk, q.device()), 0.0, false,
                                          scale, gqa);
}

}  // namespace

CoreBackend parse_core_backend(const std::string& name) {
  if (name == "auto") return CoreBackend::automatic;
  if (name == "math") return CoreBackend::math;
  if (name == "flash") return CoreBackend::flash;
  if (name == "cudnn") return CoreBackend::cudnn;
  if (name == "efficient") return CoreBackend::efficient;
  throw Error("unknown attention.core '" + name +
              "'; allowed: auto, math, flash, cudnn, efficient");
}

at::Tensor core_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          double scale, CoreBackend backend) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "core_attention expects 4-d q, k, v");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "query heads must be a multiple of kv heads");
  TORCH_CHECK(q.size(2) <= k.size(2), "more queries than keys");
  if (!q.is_cuda()) return math_attention(q, k, v, scale);
  return sdpa_attention(q, k, v, scale, backend);
}

}  // namespace cca
