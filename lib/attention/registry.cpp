// Maps attention.kind to the variant's module factory, from lib/config/variants/list.h.
#include <map>

#include "attention/attention.h"
#include "config/variants/list.h"
#include "util/error.h"

namespace cca {

#define CCA_DECLARE_FACTORY(name)                                              \
  std::shared_ptr<Attention> make_##name##_attention(const AttentionGeometry&, \
                                                     const AttentionOptions&);
CCA_ATTENTION_VARIANTS(CCA_DECLARE_FACTORY)
#undef CCA_DECLARE_FACTORY

namespace {
using Factory = std::shared_ptr<Attention> (*)(const AttentionGeometry&, const AttentionOptions&);

const std::map<std::string, Factory>& registry() {
#define CCA_LIST_FACTORY(name) {#name, make_##name##_attention},
  static const std::map<std::string, Factory> factories = {
      CCA_ATTENTION_VARIANTS(CCA_LIST_FACTORY)};
#undef CCA_LIST_FACTORY
  return factories;
}
}  // namespace

void check_documents_without_cache(const Documents* documents, const AttentionCache* cache) {
  if (documents != nullptr && cache != nullptr) {
    throw Error(
        "attention: documents (data.document_masking) apply to whole packed training sequences, "
        "not to a forward that continues a decode cache");
  }
}

std::shared_ptr<Attention> make_attention(const AttentionGeometry& geometry,
                                          const AttentionOptions& options) {
  auto it = registry().find(geometry.kind);
  if (it == registry().end()) throw Error("unknown attention kind '" + geometry.kind + "'");
  return it->second(geometry, options);
}

}  // namespace cca
