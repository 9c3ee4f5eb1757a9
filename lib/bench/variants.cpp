#include "bench/variants.h"

#include "util/error.h"

namespace cca::bench {

bool has_cca_prologue(const std::string& name) {
  return name == "cca4" || name == "cca8" || name == "ccgqa2x8";
}

Config variant_config(const std::string& name, int64_t E, int64_t d) {
  Config c = default_config();
  c.model.d_model = E;
  c.attention.head_dim = d;
  c.attention.n_heads = E / d;
  c.attention.n_kv_heads = 0;
  if (name == "mha") {
    c.attention.kind = "mha";
  } else if (name == "gqa4" || name == "gqa8") {
    c.attention.kind = "gqa";
    c.attention.n_kv_heads = E / d / (name == "gqa4" ? 4 : 8);
  } else if (name == "mla") {  // spec §8.2: r_q = E/2, r_kv + d_rope = E/2
    c.attention.kind = "mla";
    VariantSettings& s = c.attention.settings;
    s.set("attention.mla.q_lora_rank", E / 2);
    s.set("attention.mla.kv_lora_rank", E / 2 - 64);
    s.set("attention.mla.qk_nope_head_dim", d);
    s.set("attention.mla.qk_rope_head_dim", 64);
    s.set("attention.mla.v_head_dim", d);
  } else if (has_cca_prologue(name)) {
    c.attention.kind = name == "ccgqa2x8" ? "ccgqa" : "cca";
    c.attention.rope_fraction = 0.5;
    c.attention.settings.set("attention.cca.q_compression", name == "cca4"   ? 4
                                                            : name == "cca8" ? 8
                                                                             : 2);
    c.attention.settings.set("attention.cca.kv_compression", name == "ccgqa2x8" ? 8 : 0);
  } else {
    throw Error("cca-bench: unknown variant '" + name +
                "' (mha, gqa4, gqa8, mla, cca4, ccgqa2x8, cca8)");
  }
  return c;
}

c10::ScalarType parse_bench_dtype(const std::string& name) {
  if (name == "bf16") return c10::kBFloat16;
  if (name == "fp16") return c10::kHalf;
  if (name == "fp32") return c10::kFloat;
  throw Error("cca-bench: --dtype must be bf16, fp16 or fp32, got '" + name + "'");
}

}  // namespace cca::bench
