// Compressed Convolutional Grouped-Query Attention: CCA with fewer key/value latent heads than
// query latent heads (kv_compression C2 a multiple of q_compression C1). Same keys and module as
// cca (cca.h); only the rule on C2 differs.
#include "config/variants/cca.h"

namespace cca::variants {
namespace {

class CcgqaVariant : public CcaVariant {
 public:
  std::string name() const override { return "ccgqa"; }

 protected:
  bool grouped() const override { return true; }
};

}  // namespace

const AttentionVariant& ccgqa_variant() {
  static const CcgqaVariant variant;
  return variant;
}

}  // namespace cca::variants
