// A benchmark case that runs out of memory (or fails otherwise) is reported in the JSON and the
// benchmark goes on; a case that runs reports its peak memory.
#include <gtest/gtest.h>

#include <c10/util/Exception.h>

#include "bench/bench_case.h"
#include "util/error.h"

namespace cca {
namespace {

const at::Device kCpu(at::kCPU);

std::string text(const Json::Object& o, const char* key) {
  return o.at(key).as_string(key);
}

TEST(BenchCase, ARunningCaseKeepsItsFieldsAndReportsPeakMemory) {
  const Json::Object outcome = bench::run_fallible_case(kCpu, {{"variant", "mha"}, {"seq", 4}}, [] {
    const at::Tensor big = at::ones({1 << 20});  // 4 MiB: some resident memory
    return Json::Object{{"fwd_ms", big.sum().item<double>() / (1 << 20)}};
  });
  EXPECT_TRUE(bench::case_succeeded(outcome));
  EXPECT_EQ(text(outcome, "variant"), "mha");
  EXPECT_EQ(outcome.at("seq").as_int("seq"), 4);
  EXPECT_EQ(outcome.at("fwd_ms").as_double("fwd_ms"), 1.0);
  EXPECT_GT(outcome.at("peak_memory_gib").as_double("peak"), 0.0);
}

TEST(BenchCase, OutOfMemoryAndOtherErrorsBecomeOutcomesNotCrashes) {
  const Json::Object oom = bench::run_fallible_case(kCpu, {{"seq", 131072}}, []() -> Json::Object {
    TORCH_CHECK_WITH(OutOfMemoryError, false,
                     "CUDA out of memory. Tried to allocate 64.00 GiB\nmore detail");
    return {};
  });
  EXPECT_FALSE(bench::case_succeeded(oom));
  EXPECT_EQ(text(oom, "status"), "out_of_memory");
  EXPECT_EQ(text(oom, "error"), "CUDA out of memory. Tried to allocate 64.00 GiB");
  EXPECT_EQ(oom.at("seq").as_int("seq"), 131072);
  EXPECT_EQ(oom.count("peak_memory_gib"), 0u);

  const Json::Object check = bench::run_fallible_case(kCpu, {}, []() -> Json::Object {
    TORCH_CHECK(false, "cca kernels: head_dim must be 64, 128 or 256, got 96");
    return {};
  });
  EXPECT_EQ(text(check, "status"), "error");
  EXPECT_NE(text(check, "error").find("head_dim must be 64"), std::string::npos);

  const Json::Object ours = bench::run_fallible_case(
      kCpu, {}, []() -> Json::Object { throw Error("no such variant 'xyz'"); });
  EXPECT_EQ(text(ours, "status"), "error");
  EXPECT_EQ(text(ours, "error"), "no such variant 'xyz'");
}

}  // namespace
}  // namespace cca
