// Multi-head attention and grouped-query attention (n_kv_heads < n_heads; 1 = MQA), with optional
// per-head RMSNorm on q and k.
#include <ATen/ATen.h>

#include <cmath>

#include "attention/attention.h"
#include "attention/head_projections.h"
#include "attention/kv_cache.h"

namespace cca {
namespace {

struct MhaCache : AttentionCache {
  KeyValueCache kv;
  int64_t bytes() const override { return kv.bytes(); }
};

class MhaAttention : public Attention {
 public:
  MhaAttention(const AttentionGeometry& g, const AttentionOptions& options)
      : core_(options.core),
        scale_(attention_scale(g.head_dim, options)),
        projections_(*this, g, options) {}

  at::Tensor forward(const at::Tensor& x, AttentionCache* cache,
                     const Documents* documents) override {
    check_documents_without_cache(documents, cache);
    HeadTensors t = projections_.project(x, cache ? cache->length : 0, cache != nullptr, documents);
    if (documents != nullptr)
      return projections_.output(document_attention(t.q, t.k, t.v, scale_, *documents));
    if (cache != nullptr) {
      auto& state = static_cast<MhaCache&>(*cache);
      state.kv.append(t.k, t.v);
      state.length += x.size(1);
      t.k = state.kv.keys.filled();
      t.v = state.kv.values.filled();
    }
    return projections_.output(core_attention(t.q, t.k, t.v, scale_, core_));
  }

  std::unique_ptr<AttentionCache> new_cache() const override {
    return std::make_unique<MhaCache>();
  }

 private:
  CoreBackend core_;
  double scale_;
  HeadProjections projections_;
};

}  // namespace

std::shared_ptr<Attention> make_mha_attention(const AttentionGeometry& g,
                                              const AttentionOptions& options) {
  return std::make_shared<MhaAttention>(g, options);
}

std::shared_ptr<Attention> make_gqa_attention(const AttentionGeometry& g,
                                              const AttentionOptions& options) {
  return std::make_shared<MhaAttention>(g, options);
}

}  // namespace cca
