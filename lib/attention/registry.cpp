// Maps attention.kind to the variant's factory. Adding a variant: its own file, one line here,
// and the schema's attention.kind choices.
#include <map>

#include "attention/attention.h"
#include "util/error.h"

namespace cca {

std::shared_ptr<Attention> make_mha_attention(const AttentionGeometry&, const AttentionOptions&);
std::shared_ptr<Attention> make_mla_attention(const AttentionGeometry&, const AttentionOptions&);
std::shared_ptr<Attention> make_cca_attention(const AttentionGeometry&, const AttentionOptions&);

namespace {
using Factory = std::shared_ptr<Attention> (*)(const AttentionGeometry&, const AttentionOptions&);

const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> factories = {
      {"mha", make_mha_attention}, {"gqa", make_mha_attention},   {"mla", make_mla_attention},
      {"cca", make_cca_attention}, {"ccgqa", make_cca_attention},
  };
  return factories;
}
}  // namespace

std::shared_ptr<Attention> make_attention(const AttentionGeometry& geometry,
                                          const AttentionOptions& options) {
  auto it = registry().find(geometry.kind);
  if (it == registry().end()) throw Error("unknown attention kind '" + geometry.kind + "'");
  return it->second(geometry, options);
}

void init_normal(at::Tensor& weight, double std) {
  at::NoGradGuard no_grad;
  weight.normal_(0.0, std);
}

}  // namespace cca
