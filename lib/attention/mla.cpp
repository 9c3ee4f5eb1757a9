// PLACEHOLDER: replaced by the MLA implementation.
#include "attention/attention.h"
#include "util/error.h"
namespace cca {
std::shared_ptr<Attention> make_mla_attention(const AttentionGeometry&, const AttentionOptions&) {
  throw Error("mla not implemented yet");
}
}  // namespace cca
