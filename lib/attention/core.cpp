#include "attention/core.h"

#include <ATen/Context.h>
#include <c10/core/DeviceGuard.h>

#include <array>
#include <limits>
#include <optional>

#include "util/error.h"

#ifdef CCA_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/native/transformers/cuda/sdp_utils.h>
#endif

namespace cca {
namespace {

// Boolean mask [Sq, Sk], true where query i (at absolute position Sk - Sq + i) may see key j.
at::Tensor causal_mask(int64_t sq, int64_t sk, const at::Device& device) {
  const auto opts = at::TensorOptions().dtype(at::kLong).device(device);
  const at::Tensor query_pos = at::arange(sk - sq, sk, opts).unsqueeze(1);
  const at::Tensor key_pos = at::arange(0, sk, opts).unsqueeze(0);
  return key_pos.le(query_pos);
}

// Exact attention under `mask` (true = visible; broadcast against [B, Hq, Sq, Sk]).
at::Tensor math_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          double scale, const at::Tensor& mask) {
  const int64_t group = q.size(1) / k.size(1);
  const at::ScalarType compute = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor kk = group > 1 ? k.repeat_interleave(group, 1) : k;
  at::Tensor vv = group > 1 ? v.repeat_interleave(group, 1) : v;
  at::Tensor scores = at::matmul(q.to(compute), kk.to(compute).transpose(-2, -1)).mul(scale);
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

// The SDPA call for these shapes: causal for training (Sq == Sk), no mask for one new token,
// and an explicit bottom-right causal mask for a chunk continuing from a cache (LibTorch's
// is_causal aligns the diagonal top-left when Sq != Sk).
struct SdpCall {
  std::optional<at::Tensor> mask;
  bool causal = false;
  bool gqa = false;
};

SdpCall plan_call(const at::Tensor& q, const at::Tensor& k) {
  SdpCall call;
  const int64_t sq = q.size(2), sk = k.size(2);
  call.gqa = q.size(1) != k.size(1);
  call.causal = sq == sk;
  if (sq != sk && sq != 1) call.mask = causal_mask(sq, sk, q.device());
  return call;
}

// See resolve_core_backend. LibTorch's own checks (the ones SDPA runs before it dispatches)
// decide what each backend takes; only the order is ours.
CoreBackend resolve_cuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         const SdpCall& call) {
#ifdef CCA_WITH_CUDA
  const c10::DeviceGuard guard(q.device());
  const sdp::sdp_params params{q, k, v, call.mask, 0.0, call.causal, call.gqa};
  // Measured on the H200 (docs/benchmarks.md): cuDNN ≈2× flash for every variant and length.
  // Below sm90 it is not measured here, so LibTorch's long-standing flash-first order stands.
  const bool hopper_or_newer = at::cuda::getCurrentDeviceProperties()->major >= 9;
  // cuDNN builds an execution plan per shape. With a cache the key length changes on every call
  // (decode, chunked prefill), and each new plan costs tens of milliseconds (MHA decode at 16k
  // context measured 39 ms/step), so only equal query and key lengths (training, whole-prompt
  // prefill) go to cuDNN.
  const bool fixed_shape = q.size(2) == k.size(2);
  if (hopper_or_newer && fixed_shape && sdp::can_use_cudnn_attention(params, /*debug=*/false))
    return CoreBackend::cudnn;
  if (sdp::can_use_flash_attention(params, false)) return CoreBackend::flash;
  if (sdp::can_use_mem_efficient_attention(params, false)) return CoreBackend::efficient;
#else
  (void)q, (void)k, (void)v, (void)call;
#endif
  return CoreBackend::math;
}

at::Tensor sdpa_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          double scale, CoreBackend backend) {
  const SdpCall call = plan_call(q, k);
  if (backend == CoreBackend::automatic) backend = resolve_cuda(q, k, v, call);
  const SdpBackendScope scope(backend);
  return at::scaled_dot_product_attention(q, k, v, call.mask, 0.0, call.causal, scale, call.gqa);
}

// LibTorch's flash kernel in its variable-length form: bf16/fp16 on sm80+, q and k of one head
// dim (a multiple of 8, at most 256), values no wider than that (padded up to it).
bool varlen_flash_takes(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
#ifdef CCA_WITH_CUDA
  const at::ScalarType t = q.scalar_type();
  if ((t != at::kBFloat16 && t != at::kHalf) || k.scalar_type() != t || v.scalar_type() != t)
    return false;
  const int64_t d = q.size(3);
  if (k.size(3) != d || v.size(3) > d || d % 8 != 0 || d > 256 || v.size(3) % 8 != 0) return false;
  const c10::DeviceGuard guard(q.device());
  return at::cuda::getCurrentDeviceProperties()->major >= 8;
#else
  (void)q, (void)k, (void)v;
  return false;
#endif
}

// [B, H, S, D] -> the kernel's packed [B·S, H, D].
at::Tensor packed_tokens(const at::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0) * x.size(2), x.size(1), x.size(3)});
}

// Autograd runs LibTorch's own flash backward (FlashAttentionBackward0). The documents of all
// rows form one packed batch, so no token ever sees another document or another row.
at::Tensor varlen_flash_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  double scale, const Documents& documents, int64_t window) {
  const int64_t B = q.size(0), H = q.size(1), S = q.size(2), d = q.size(3), dv = v.size(3);
  const at::Tensor values = dv < d ? at::constant_pad_nd(v, {0, d - dv}) : v;
  const std::optional<int64_t> left =
      window > 0 ? std::optional<int64_t>(window - 1) : std::nullopt;
  const std::optional<int64_t> right = window > 0 ? std::optional<int64_t>(0) : std::nullopt;
  const auto result = at::_flash_attention_forward(
      packed_tokens(q), packed_tokens(k), packed_tokens(values), documents.cu_seqlens,
      documents.cu_seqlens, documents.max_length, documents.max_length, 0.0, /*is_causal=*/true,
      /*return_debug_mask=*/false, scale, left, right);
  const at::Tensor out = std::get<0>(result).view({B, S, H, d}).transpose(1, 2);
  return dv < d ? out.narrow(-1, 0, dv) : out;
}

// cuDNN's ragged (THD) attention over the documents: bf16/fp16 on sm90+, no GQA (LibTorch's
// ragged cuDNN call repeats no heads) and no window; head dims as for flash. Only when asked
// for (attention.core: cudnn): its per-call plan building is the cost to measure against varlen
// flash before `automatic` may pick it (docs/benchmarks.md, document masking).
bool varlen_cudnn_takes(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                        int64_t window) {
#ifdef CCA_WITH_CUDA
  if (!cudnn_ragged_shape(q.size(1), k.size(1), q.size(3), window) || !varlen_flash_takes(q, k, v))
    return false;
  const c10::DeviceGuard guard(q.device());
  return at::cuda::getCurrentDeviceProperties()->major >= 9;
#else
  (void)q, (void)k, (void)v, (void)window;
  return false;
#endif
}

// Autograd runs LibTorch's cuDNN backward (CudnnAttentionBackward0) with the same offsets.
at::Tensor varlen_cudnn_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                  double scale, const Documents& documents) {
  const int64_t B = q.size(0), H = q.size(1), S = q.size(2), d = q.size(3), dv = v.size(3);
  const at::Tensor values = dv < d ? at::constant_pad_nd(v, {0, d - dv}) : v;
  const auto result = at::_cudnn_attention_forward(
      packed_tokens(q).contiguous(), packed_tokens(k).contiguous(),
      packed_tokens(values).contiguous(), std::nullopt, documents.cu_seqlens, documents.cu_seqlens,
      documents.max_length, documents.max_length,
      /*compute_log_sumexp=*/true, 0.0, /*is_causal=*/true, /*return_debug_mask=*/false, scale);
  const at::Tensor out = std::get<0>(result).view({B, S, H, d}).transpose(1, 2);
  return dv < d ? out.narrow(-1, 0, dv) : out;
}

}  // namespace

bool cudnn_ragged_shape(int64_t q_heads, int64_t kv_heads, int64_t head_dim, int64_t window) {
  return window == 0 && q_heads == kv_heads && head_dim <= 128;
}

CoreBackend parse_core_backend(const std::string& name) {
  if (name == "auto") return CoreBackend::automatic;
  if (name == "math") return CoreBackend::math;
  if (name == "flash") return CoreBackend::flash;
  if (name == "cudnn") return CoreBackend::cudnn;
  if (name == "efficient") return CoreBackend::efficient;
  throw Error("unknown attention.core '" + name +
              "'; allowed: auto, math, flash, cudnn, efficient");
}

const char* core_backend_name(CoreBackend backend) {
  switch (backend) {
    case CoreBackend::math:
      return "math";
    case CoreBackend::flash:
      return "flash";
    case CoreBackend::cudnn:
      return "cudnn";
    case CoreBackend::efficient:
      return "efficient";
    default:
      return "auto";
  }
}

CoreBackend resolve_core_backend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (!q.is_cuda()) return CoreBackend::math;
  return resolve_cuda(q, k, v, plan_call(q, k));
}

at::Tensor core_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          double scale, CoreBackend backend) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "core_attention expects 4-d q, k, v");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "query heads must be a multiple of kv heads");
  TORCH_CHECK(q.size(2) <= k.size(2), "more queries than keys");
  if (!q.is_cuda())
    return math_attention(q, k, v, scale, causal_mask(q.size(2), k.size(2), q.device()));
  return sdpa_attention(q, k, v, scale, backend);
}

at::Tensor document_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              double scale, const Documents& documents, int64_t window,
                              CoreBackend backend) {
  TORCH_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
              "document_attention expects 4-d q, k, v");
  TORCH_CHECK(q.size(1) % k.size(1) == 0, "query heads must be a multiple of kv heads");
  if (documents.shard) {
    // One exchange for keys and values: they travel side by side along the head dim.
    const at::Tensor kv = gather_sequence(at::cat({k, v}, -1), documents);
    return sharded_attention(q, kv.narrow(-1, 0, k.size(3)), kv.narrow(-1, k.size(3), v.size(3)),
                             scale, documents, window);
  }
  TORCH_CHECK(q.size(2) == k.size(2) && documents.ids.defined() &&
                  documents.ids.size(0) == q.size(0) && documents.ids.size(1) == q.size(2),
              "document_attention: documents must be [B, S] of a whole sequence (no cache)");
  if (!q.is_cuda()) return math_attention(q, k, v, scale, document_mask(documents, window));
  if (backend == CoreBackend::cudnn && varlen_cudnn_takes(q, k, v, window))
    return varlen_cudnn_attention(q, k, v, scale, documents);
  if (backend != CoreBackend::math && varlen_flash_takes(q, k, v))
    return varlen_flash_attention(q, k, v, scale, documents, window);
  const at::Tensor mask = document_mask(documents, window);
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, scale,
                                          /*enable_gqa=*/q.size(1) != k.size(1));
}

at::Tensor gather_sequence(const at::Tensor& x, const Documents& documents) {
  TORCH_CHECK(documents.shard != nullptr, "gather_sequence needs a sequence shard");
  const at::Tensor all = gather_from_group(documents.shard->group, x);  // [N, B, H, S/N, D]
  const int64_t N = all.size(0), B = x.size(0), H = x.size(1), local = x.size(2), D = x.size(3);
  return all.permute({1, 2, 0, 3, 4}).reshape({B, H, N * local, D});
}

at::Tensor sharded_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             double scale, const Documents& documents, int64_t window) {
  const SequenceShard& shard = *documents.shard;
  TORCH_CHECK(q.size(2) == shard.token_index.size(0) && k.size(2) == shard.sequence_length,
              "sharded_attention: queries must be this rank's tokens, keys the whole sequence");
  // Global indices order queries and keys; inside one document they differ by as much as the
  // in-document positions do, so the window is measured the same way as without the shard.
  const at::Tensor key_ids = shard.global_ids.index_select(1, shard.gathered_index);  // [B, S]
  const at::Tensor same = documents.ids.unsqueeze(2).eq(key_ids.unsqueeze(1));
  const at::Tensor distance =
      shard.token_index.unsqueeze(1) - shard.gathered_index.unsqueeze(0);  // [S/N, S]
  at::Tensor visible = same.logical_and(distance.ge(0).unsqueeze(0));
  if (window > 0) visible = visible.logical_and(distance.lt(window).unsqueeze(0));
  visible = visible.unsqueeze(1);  // [B, 1, S/N, S]
  if (!q.is_cuda()) return math_attention(q, k, v, scale, visible);
  return at::scaled_dot_product_attention(q, k, v, visible, 0.0, false, scale,
                                          /*enable_gqa=*/q.size(1) != k.size(1));
}

}  // namespace cca
