// The registered descriptors, from list.h.
#include <algorithm>

#include "config/attention_variant.h"
#include "config/variants/list.h"
#include "util/error.h"
#include "util/strings.h"

namespace cca {
namespace variants {
#define CCA_DECLARE_DESCRIPTOR(name) const AttentionVariant& name##_variant();
CCA_ATTENTION_VARIANTS(CCA_DECLARE_DESCRIPTOR)
#undef CCA_DECLARE_DESCRIPTOR
}  // namespace variants

const std::vector<const AttentionVariant*>& attention_variants() {
#define CCA_LIST_DESCRIPTOR(name) &variants::name##_variant(),
  static const std::vector<const AttentionVariant*> all = {
      CCA_ATTENTION_VARIANTS(CCA_LIST_DESCRIPTOR)};
#undef CCA_LIST_DESCRIPTOR
  return all;
}

std::vector<std::string> attention_variant_names() {
  std::vector<std::string> names;
  for (const AttentionVariant* v : attention_variants()) names.push_back(v->name());
  return names;
}

const AttentionVariant& attention_variant(const std::string& name) {
  const auto& all = attention_variants();
  auto it = std::find_if(all.begin(), all.end(),
                         [&](const AttentionVariant* v) { return v->name() == name; });
  if (it == all.end()) {
    throw Error("unknown attention kind '" + name +
                "' (known: " + join(attention_variant_names(), " | ") + ")");
  }
  return **it;
}

}  // namespace cca
