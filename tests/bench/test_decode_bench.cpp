// `cca-bench decode` at toy sizes on the CPU: every variant's cache grows by the spec's bytes per
// token, every point is timed, and the ratios are against MHA measured in the same run.
#include <gtest/gtest.h>

#include "bench/decode_bench.h"

namespace cca {
namespace {

TEST(DecodeBench, CacheBytesMatchTheFormulaAndEveryPointIsTimed) {
  bench::DecodeBenchOptions o;
  o.model_dim = 256;
  o.head_dim = 32;
  o.contexts = {8, 20};
  o.batches = {1, 2};
  o.variants = bench::kBenchVariants;
  o.dtype = "fp32";
  o.steps = 2;
  const Json doc = bench::run_decode_bench(o);
  const Json::Array& variants = doc.at("variants", "doc").as_array("variants");
  ASSERT_EQ(variants.size(), o.variants.size());
  for (const Json& v : variants) {
    const std::string name = v.at("variant", "v").as_string("variant");
    EXPECT_EQ(v.at("cache_bytes_per_token", name).as_double(name),
              v.at("formula_bytes_per_token", name).as_double(name))
        << name;
    const Json::Array& points = v.at("points", name).as_array(name);
    ASSERT_EQ(points.size(), o.contexts.size() * o.batches.size()) << name;
    for (const Json& p : points) {
      EXPECT_GT(p.at("prefill_ms", name).as_double(name), 0) << name;
      EXPECT_GT(p.at("decode_ms_per_step", name).as_double(name), 0) << name;
      EXPECT_GT(p.at("tokens_per_s", name).as_double(name), 0) << name;
      // Against MHA at the same point (MHA itself: 1).
      ASSERT_NE(p.find("speedup_vs_mha"), nullptr) << name;
      if (name == "mha") {
        EXPECT_EQ(p.at("speedup_vs_mha", name).as_double(name), 1.0);
      }
    }
  }
}

}  // namespace
}  // namespace cca
