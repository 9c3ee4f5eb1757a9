// Sliding-window attention: per-head projections as in mha/gqa, and each query attends to itself
// and the window - 1 tokens before it. Training runs the core in query chunks, each against only
// the keys its window reaches, so memory and time grow as S·window; the decode cache keeps the
// last window - 1 keys and values, whatever the length of the sequence.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/attention.h"
#include "attention/head_projections.h"

namespace cca {
namespace {

constexpr int64_t kMinChunk = 128;  // fewer, larger SDPA calls for small windows

struct SwaCache : AttentionCache {
  at::Tensor keys, values;  // [B, Hkv, <= window - 1, d], the newest positions
  int64_t bytes() const override {
    if (!keys.defined()) return 0;
    return (keys.numel() + values.numel()) * static_cast<int64_t>(keys.element_size());
  }
};

// Queries at absolute positions q_start.., keys at k_start..; query i sees key j when
// 0 <= pos(i) - pos(j) < window. Returns [B, Hq, Sq, d].
at::Tensor windowed_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                              int64_t q_start, int64_t k_start, int64_t window, double scale) {
  const int64_t Sq = q.size(2);
  const int64_t chunk = std::max(window, kMinChunk);
  std::vector<at::Tensor> outputs;
  for (int64_t begin = 0; begin < Sq; begin += chunk) {
    const int64_t rows = std::min(chunk, Sq - begin);
    const int64_t first_pos = q_start + begin;
    // Keys from the oldest one the chunk's first query sees to the chunk's last query.
    const int64_t key_begin = std::max<int64_t>(first_pos - window + 1, k_start) - k_start;
    const int64_t key_end = first_pos + rows - k_start;
    const at::Tensor q_pos = at::arange(first_pos, first_pos + rows,
                                        at::TensorOptions().dtype(at::kLong).device(q.device()));
    const at::Tensor k_pos = at::arange(k_start + key_begin, k_start + key_end,
                                        at::TensorOptions().dtype(at::kLong).device(q.device()));
    const at::Tensor distance = q_pos.unsqueeze(1) - k_pos.unsqueeze(0);
    const at::Tensor visible = distance.ge(0).logical_and(distance.lt(window));
    outputs.push_back(at::scaled_dot_product_attention(
        q.narrow(2, begin, rows), k.narrow(2, key_begin, key_end - key_begin),
        v.narrow(2, key_begin, key_end - key_begin), visible, 0.0, false, scale,
        /*enable_gqa=*/true));
  }
  return outputs.size() == 1 ? outputs.front() : at::cat(outputs, 2);
}

class SlidingWindowAttention : public Attention {
 public:
  SlidingWindowAttention(const AttentionGeometry& g, const AttentionOptions& options)
      : window_(g.settings.integer("attention.swa.window")),
        scale_(attention_scale(g.head_dim, options)),
        projections_(*this, g, options) {}

  at::Tensor forward(const at::Tensor& x, AttentionCache* cache,
                     const Documents* documents) override {
    check_documents_without_cache(documents, cache);
    const int64_t offset = cache ? cache->length : 0;
    HeadTensors t = projections_.project(x, offset, cache != nullptr, documents);
    if (documents != nullptr)
      return projections_.output(document_attention(t.q, t.k, t.v, scale_, *documents, window_));
    int64_t k_start = offset;
    if (cache != nullptr && static_cast<SwaCache&>(*cache).keys.defined()) {
      auto& state = static_cast<SwaCache&>(*cache);
      k_start = offset - state.keys.size(2);
      t.k = at::cat({state.keys, t.k}, 2);
      t.v = at::cat({state.values, t.v}, 2);
    }
    const at::Tensor o = windowed_attention(t.q, t.k, t.v, offset, k_start, window_, scale_);
    if (cache != nullptr) {
      auto& state = static_cast<SwaCache&>(*cache);
      const int64_t keep = std::min(window_ - 1, t.k.size(2));
      // Copies, so the cache never holds more than the window (a narrowed view would keep all).
      state.keys = t.k.narrow(2, t.k.size(2) - keep, keep).clone();
      state.values = t.v.narrow(2, t.v.size(2) - keep, keep).clone();
      state.length += x.size(1);
    }
    return projections_.output(o);
  }

  std::unique_ptr<AttentionCache> new_cache() const override {
    return std::make_unique<SwaCache>();
  }

 private:
  int64_t window_;
  double scale_;
  HeadProjections projections_;
};

}  // namespace

std::shared_ptr<Attention> make_swa_attention(const AttentionGeometry& g,
                                              const AttentionOptions& options) {
  return std::make_shared<SlidingWindowAttention>(g, options);
}

}  // namespace cca
