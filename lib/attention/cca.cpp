// PLACEHOLDER: replaced by the CCA/CCGQA implementation.
#include "attention/attention.h"
#include "util/error.h"
namespace cca {
std::shared_ptr<Attention> make_cca_attention(const AttentionGeometry&, const AttentionOptions&) {
  throw Error("cca not implemented yet");
}
}  // namespace cca
