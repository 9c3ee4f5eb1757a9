// FP8 scaling on the CPU (the same quantisation the GPU path feeds to at::_scaled_mm): scales from
// amax, saturation, round-trip error against the formats' precision, row-wise against tensor-wise
// scaling, and the fp8 linear layer's forward and backward against fp32. The GPU tests compare
// the real FP8 GEMMs to the same reference (skipped without an sm_89+ GPU).
#include <gtest/gtest.h>

#include <ATen/cuda/CUDAContext.h>

#include <cmath>

#include "ops/device.h"
#include "ops/fp8.h"
#include "ops/fp8_linear.h"
#include "ops/precision.h"
#include "ops/recompute.h"
#include "ops/stacked_linear.h"
#include "testing/error_of.h"

namespace cca {
namespace {

using testing::error_of;

constexpr at::ScalarType kE4M3 = at::kFloat8_e4m3fn;
constexpr at::ScalarType kE5M2 = at::kFloat8_e5m2;

// Largest relative rounding error of a normal number: half a unit in the last place of a format
// with `mantissa_bits` stored bits.
double half_ulp(int mantissa_bits) {
  return std::ldexp(1.0, -(mantissa_bits + 1));
}

// ‖a − b‖ / ‖b‖ in fp32.
double relative_error(const at::Tensor& a, const at::Tensor& b) {
  const at::Tensor a32 = a.to(at::kFloat), b32 = b.to(at::kFloat);
  return (a32 - b32).norm().item<double>() / b32.norm().item<double>();
}

TEST(Fp8Format, MaximaAreTheFormatsLargestFiniteValues) {
  EXPECT_EQ(fp8_max(kE4M3), 448.0);
  EXPECT_EQ(fp8_max(kE5M2), 57344.0);
  // ATen's own conversion agrees: the maximum survives a round trip exactly.
  for (const at::ScalarType format : {kE4M3, kE5M2}) {
    const at::Tensor max = at::full({1}, fp8_max(format));
    EXPECT_EQ(max.to(format).to(at::kFloat).item<double>(), fp8_max(format));
  }
  EXPECT_NE(error_of([] { fp8_max(at::kBFloat16); }).find("not an fp8 format"), std::string::npos);
}

TEST(Fp8Scale, MapsAmaxOntoTheFormatMaximumAndStaysFiniteForZero) {
  const at::Tensor amax = at::tensor({2.0f, 0.5f, 0.0f});
  const at::Tensor factor = fp8_scale_from_amax(amax, kE4M3);
  EXPECT_FLOAT_EQ(factor[0].item<float>(), 224.0f);
  EXPECT_FLOAT_EQ(factor[1].item<float>(), 896.0f);
  EXPECT_TRUE(std::isfinite(factor[2].item<float>())) << "an all-zero tensor needs a finite scale";
  EXPECT_FLOAT_EQ(fp8_scale_from_amax(at::tensor(4.0f), kE5M2).item<float>(), 14336.0f);
}

TEST(Fp8Quantize, LargestMagnitudeLandsOnTheMaximumAndNothingOverflows) {
  at::manual_seed(1);
  for (const at::ScalarType format : {kE4M3, kE5M2}) {
    const at::Tensor x = at::randn({16, 64}) * 1000.0;
    const Fp8Tensor q = quantize_fp8(x, format, Fp8Scaling::kTensor);
    const at::Tensor data = q.data.to(at::kFloat);
    EXPECT_EQ(q.data.scalar_type(), format);
    EXPECT_TRUE(at::isfinite(data).all().item<bool>());
    EXPECT_EQ(data.abs().max().item<double>(), fp8_max(format));
    EXPECT_EQ(q.scale.numel(), 1);
    // The dequantised maximum is the original one, to the format's precision.
    EXPECT_NEAR(dequantize_fp8(q).abs().max().item<double>(), x.abs().max().item<double>(),
                x.abs().max().item<double>() * 1e-6);
  }
}

TEST(Fp8Quantize, AllZeroTensorQuantisesToZeros) {
  const Fp8Tensor q = quantize_fp8(at::zeros({16, 16}), kE4M3, Fp8Scaling::kRow);
  EXPECT_TRUE(at::equal(dequantize_fp8(q), at::zeros({16, 16})));
}

// Every element whose scaled value is a normal number comes back within half a unit in the last
// place: 2⁻⁴ for e4m3 (3 mantissa bits), 2⁻³ for e5m2 (2 bits). The average error must not be
// zero either (a quantiser that forgot to round would pass the bound).
TEST(Fp8Quantize, RoundTripErrorMatchesTheFormatsPrecision) {
  at::manual_seed(2);
  const at::Tensor x = at::randn({64, 256});
  struct Case {
    at::ScalarType format;
    int mantissa_bits;
    double min_normal;
  };
  for (const Case c : {Case{kE4M3, 3, std::ldexp(1.0, -6)}, Case{kE5M2, 2, std::ldexp(1.0, -14)}}) {
    for (const Fp8Scaling scaling : {Fp8Scaling::kTensor, Fp8Scaling::kRow}) {
      const Fp8Tensor q = quantize_fp8(x, c.format, scaling);
      const at::Tensor back = dequantize_fp8(q);
      const at::Tensor normal = (q.data.to(at::kFloat).abs() >= c.min_normal);
      const at::Tensor rel = ((back - x).abs() / x.abs()).masked_select(normal);
      EXPECT_LE(rel.max().item<double>(), half_ulp(c.mantissa_bits) * (1 + 1e-6))
          << fp8_scaling_name(scaling);
      EXPECT_GT(rel.mean().item<double>(), half_ulp(c.mantissa_bits) / 8)
          << "quantisation should lose precision measurably";
    }
  }
}

// One row 10⁶ times larger than the rest: one scale for the whole tensor pushes the ordinary rows
// below e4m3's smallest subnormal, while a scale per row keeps every row at full precision.
TEST(Fp8Quantize, RowScalingProtectsOrdinaryRowsFromAnOutlierRow) {
  at::manual_seed(3);
  at::Tensor x = at::randn({8, 64});
  x[3].mul_(1e6);
  const at::Tensor ordinary = at::cat({x.narrow(0, 0, 3), x.narrow(0, 4, 4)});
  const auto ordinary_error = [&](Fp8Scaling scaling) {
    const at::Tensor back = dequantize_fp8(quantize_fp8(x, kE4M3, scaling));
    return relative_error(at::cat({back.narrow(0, 0, 3), back.narrow(0, 4, 4)}), ordinary);
  };
  const Fp8Tensor rows = quantize_fp8(x, kE4M3, Fp8Scaling::kRow);
  EXPECT_EQ(rows.scale.sizes(), (std::vector<int64_t>{8, 1}));
  EXPECT_LT(ordinary_error(Fp8Scaling::kRow), 0.06);
  EXPECT_GT(ordinary_error(Fp8Scaling::kTensor), 0.5) << "tensor-wise should have flushed them";
  // The outlier row itself is fine either way.
  const at::Tensor outlier_back = dequantize_fp8(quantize_fp8(x, kE4M3, Fp8Scaling::kTensor))[3];
  EXPECT_LT(relative_error(outlier_back, x[3]), 0.06);
}

TEST(Fp8Quantize, TransposeKeepsTensorScaleAndRefusesRowScale) {
  at::manual_seed(4);
  const at::Tensor x = at::randn({16, 32});
  const Fp8Tensor q = quantize_fp8(x, kE4M3, Fp8Scaling::kTensor);
  const Fp8Tensor t = transpose_fp8(q);
  EXPECT_TRUE(at::equal(dequantize_fp8(t), dequantize_fp8(q).t()));
  EXPECT_TRUE(t.data.is_contiguous());
  // Quantising a transposed view gives a row-major copy, as the GEMM needs.
  EXPECT_TRUE(quantize_fp8(x.t(), kE4M3, Fp8Scaling::kRow).data.is_contiguous());
  const std::string message =
      error_of([&] { transpose_fp8(quantize_fp8(x, kE4M3, Fp8Scaling::kRow)); });
  EXPECT_NE(message.find("row-wise"), std::string::npos) << message;
}

TEST(Fp8Scaling, ParsesTheConfigNamesAndNamesTheKeyOtherwise) {
  EXPECT_EQ(parse_fp8_scaling("tensor"), Fp8Scaling::kTensor);
  EXPECT_EQ(parse_fp8_scaling("row"), Fp8Scaling::kRow);
  const std::string message = error_of([] { parse_fp8_scaling("block"); });
  EXPECT_NE(message.find("train.fp8.scaling"), std::string::npos) << message;
  EXPECT_NE(message.find("'block'"), std::string::npos) << message;
  EXPECT_NE(message.find("tensor"), std::string::npos) << message;
}

// The fp8 layer's forward and both gradients against fp32: within what e4m3 operands (and e5m2
// gradients) cost, and measurably different from fp32 (the layer really quantises).
struct LinearErrors {
  double y, dx, dw;
};

LinearErrors fp8_linear_errors(const at::Device& device, Fp8Scaling scaling) {
  at::manual_seed(5);
  const at::Tensor x0 = at::randn({4, 8, 64});
  const at::Tensor w0 = at::randn({48, 64}) * 0.1;
  const at::Tensor dy = at::randn({4, 8, 48});
  const at::Tensor x = x0.to(device).clone().requires_grad_(true);
  const at::Tensor w = w0.to(device).clone().requires_grad_(true);
  const at::Tensor y = fp8_linear(x, w, scaling);
  y.backward(dy.to(device).to(y.scalar_type()));
  EXPECT_EQ(y.scalar_type(), at::kBFloat16);
  EXPECT_EQ(x.grad().scalar_type(), at::kFloat) << "dX in x's dtype";
  EXPECT_EQ(w.grad().scalar_type(), at::kFloat) << "dW in the master weight's dtype";

  const at::Tensor xr = x0.clone().requires_grad_(true), wr = w0.clone().requires_grad_(true);
  const at::Tensor yr = at::linear(xr, wr);
  yr.backward(dy);
  return {relative_error(y.cpu(), yr), relative_error(x.grad().cpu(), xr.grad()),
          relative_error(w.grad().cpu(), wr.grad())};
}

void expect_fp8_accuracy(const LinearErrors& e, const std::string& label) {
  // e4m3 rounds each operand by ≤ 2⁻⁴ (about 2.5% on average); sums of products average much of
  // it out. e5m2 gradients round by ≤ 2⁻³.
  EXPECT_LT(e.y, 0.06) << label;
  EXPECT_LT(e.dx, 0.10) << label;
  EXPECT_LT(e.dw, 0.10) << label;
  // fp32 would be ~1e-7 off; bf16 output rounding alone ~2e-3.
  EXPECT_GT(e.y, 5e-3) << label << ": the forward did not quantise";
  EXPECT_GT(e.dx, 5e-3) << label << ": dX did not quantise";
  EXPECT_GT(e.dw, 5e-3) << label << ": dW did not quantise";
}

TEST(Fp8Linear, ForwardAndBackwardOnCpuAgreeWithFp32WithinFp8Error) {
  for (const Fp8Scaling scaling : {Fp8Scaling::kTensor, Fp8Scaling::kRow}) {
    expect_fp8_accuracy(fp8_linear_errors(at::Device(at::kCPU), scaling),
                        fp8_scaling_name(scaling));
  }
}

TEST(Fp8Linear, HiddenLinearRoutesThroughFp8OnlyInFp8ModeAndForFittingShapes) {
  at::manual_seed(6);
  const at::Tensor x = at::randn({2, 16, 64});
  const at::Tensor w = at::randn({48, 64});
  const at::Tensor odd = at::randn({40, 64});
  EXPECT_TRUE(at::equal(hidden_linear(x, w), at::linear(x, w))) << "off: plain at::linear";
  {
    const Fp8ModeScope fp8(Fp8Mode{true, Fp8Scaling::kRow});
    EXPECT_TRUE(current_fp8_mode().enabled);
    EXPECT_TRUE(at::equal(hidden_linear(x, w), fp8_linear(x, w, Fp8Scaling::kRow)));
    EXPECT_TRUE(at::equal(hidden_linear(x, odd), at::linear(x, odd))) << "40 outputs: bf16";
    // 3 tokens: too few rows for the weight-gradient GEMM, this call only.
    const at::Tensor few = x.narrow(0, 0, 1).narrow(1, 0, 3);
    EXPECT_TRUE(at::equal(hidden_linear(few, w), at::linear(few, w)));
  }
  EXPECT_FALSE(current_fp8_mode().enabled) << "the scope restores the previous mode";
  const std::string summary = fp8_layer_summary();
  EXPECT_NE(summary.find("64→48"), std::string::npos) << summary;
  EXPECT_NE(summary.find("64→40 (out 40 is not a multiple of 16)"), std::string::npos) << summary;
}

// The stacked q/k/v projections go to fp8 as one product of the stacked fp32 weights, and each
// weight gets its fp32 gradient slice back.
TEST(Fp8Linear, StackedProjectionsRunAsOneFp8Product) {
  at::manual_seed(8);
  const at::Tensor x = at::randn({2, 16, 64});
  std::vector<at::Tensor> weights;
  for (const int64_t rows : {48, 16, 32}) {
    weights.push_back(at::randn({rows, 64}).requires_grad_(true));
  }
  std::vector<at::Tensor> parts;
  {
    const Fp8ModeScope fp8(Fp8Mode{true, Fp8Scaling::kTensor});
    parts = stacked_linear(x, weights);
  }
  const std::vector<at::Tensor> expected = at::split_with_sizes(
      fp8_linear(x, at::cat(weights, 0).detach(), Fp8Scaling::kTensor), {48, 16, 32}, -1);
  ASSERT_EQ(parts.size(), 3u);
  for (size_t i = 0; i < parts.size(); ++i) EXPECT_TRUE(at::equal(parts[i], expected[i])) << i;
  (parts[0].sum() + parts[2].sum()).backward();
  for (const at::Tensor& w : weights) {
    ASSERT_TRUE(w.grad().defined());
    EXPECT_EQ(w.grad().scalar_type(), at::kFloat);
  }
  EXPECT_EQ(weights[1].grad().abs().max().item<float>(), 0.0f) << "k's output was not used";
  EXPECT_GT(weights[0].grad().abs().max().item<float>(), 0.0f);
}

// A checkpointed block is recomputed during backward, after the forward's scope has closed (and
// on the GPU on another thread): it must run in the fp8 mode its forward had.
class ModeRecorder : public RecomputableLayer {
 public:
  std::vector<at::Tensor> recomputable_forward(const at::Tensor& x) override {
    seen.push_back(current_fp8_mode());
    return {x * 2.0};
  }
  std::vector<Fp8Mode> seen;
};

TEST(Fp8Linear, RecomputationReentersTheForwardsFp8Mode) {
  ModeRecorder layer;
  const at::Tensor x = at::randn({4}).requires_grad_(true);
  at::Tensor y;
  {
    const Fp8ModeScope fp8(Fp8Mode{true, Fp8Scaling::kRow});
    y = recomputed(layer, x)[0];
  }
  y.sum().backward();
  ASSERT_EQ(layer.seen.size(), 2u);
  EXPECT_TRUE(layer.seen[1].enabled) << "recomputed without fp8";
  EXPECT_EQ(layer.seen[1].scaling, Fp8Scaling::kRow);
  EXPECT_FALSE(current_fp8_mode().enabled);
}

TEST(Fp8Linear, ShapeProblemsNameTheDimension) {
  EXPECT_EQ(fp8_shape_problem(32, 64, 48), "");
  EXPECT_EQ(fp8_shape_problem(32, 72, 48), "in 72 is not a multiple of 16");
  EXPECT_EQ(fp8_shape_problem(5, 64, 48), "5 rows (tokens) are not a multiple of 16");
}

TEST(Fp8Precision, AutocastScopeTurnsFp8ModeOnForFp8Precision) {
  Precision fp8;
  fp8.autocast = true;
  fp8.compute_dtype = at::kBFloat16;
  fp8.fp8 = true;
  fp8.fp8_scaling = Fp8Scaling::kRow;
  {
    const AutocastScope scope(fp8, at::Device(at::kCPU));
    EXPECT_TRUE(current_fp8_mode().enabled);
    EXPECT_EQ(current_fp8_mode().scaling, Fp8Scaling::kRow);
  }
  EXPECT_FALSE(current_fp8_mode().enabled);
  const AutocastScope bf16(resolve_precision("bf16", at::Device(at::kCPU)), at::kCPU);
  EXPECT_FALSE(current_fp8_mode().enabled);
  EXPECT_EQ(fp8.short_name(), "fp8");
}

TEST(Fp8Precision, RefusedOnTheCpuWithAClearMessage) {
  const std::string message = error_of([] { resolve_precision("fp8", at::Device(at::kCPU)); });
  EXPECT_NE(message.find("train.precision: fp8"), std::string::npos) << message;
  EXPECT_NE(message.find("compute capability 8.9"), std::string::npos) << message;
  EXPECT_NE(message.find("CPU"), std::string::npos) << message;
  EXPECT_NE(message.find("allowed there: auto, fp32, bf16"), std::string::npos) << message;
}

TEST(Fp8Precision, CapabilityThresholdIsAda) {
  EXPECT_FALSE(fp8_capable(8, 0));  // A100
  EXPECT_FALSE(fp8_capable(8, 6));  // A10, RTX 30xx
  EXPECT_TRUE(fp8_capable(8, 9));   // L4, L40, RTX 40xx
  EXPECT_TRUE(fp8_capable(9, 0));   // H100, H200
  EXPECT_TRUE(fp8_capable(10, 0));  // B200
}

// ---- on the GPU
// ----------------------------------------------------------------------------------

bool fp8_gpu_available() {
  if (!cuda_available()) return false;
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(0);
  return fp8_capable(prop->major, prop->minor);
}

TEST(Fp8LinearCuda, ScaledMmAgreesWithFp32AndWithTheCpuEmulation) {
  if (!fp8_gpu_available()) GTEST_SKIP() << "no GPU with FP8 tensor cores (sm_89+) visible";
  const at::Device gpu(at::kCUDA, 0);
  for (const Fp8Scaling scaling : {Fp8Scaling::kTensor, Fp8Scaling::kRow}) {
    const LinearErrors cuda = fp8_linear_errors(gpu, scaling);
    const LinearErrors cpu = fp8_linear_errors(at::Device(at::kCPU), scaling);
    expect_fp8_accuracy(cuda, std::string("cuda ") + fp8_scaling_name(scaling));
    // Same quantised operands, different accumulation: the errors nearly coincide.
    EXPECT_NEAR(cuda.y, cpu.y, 0.25 * cpu.y) << fp8_scaling_name(scaling);
    EXPECT_NEAR(cuda.dx, cpu.dx, 0.25 * cpu.dx) << fp8_scaling_name(scaling);
    EXPECT_NEAR(cuda.dw, cpu.dw, 0.25 * cpu.dw) << fp8_scaling_name(scaling);
  }
}

// Against autocast's bf16 linear at a realistic width, inputs in bf16 as the model gives them.
TEST(Fp8LinearCuda, CloseToBf16LinearAtModelWidth) {
  if (!fp8_gpu_available()) GTEST_SKIP() << "no GPU with FP8 tensor cores (sm_89+) visible";
  at::manual_seed(7);
  const auto opts = at::TensorOptions().device(at::kCUDA);
  const at::Tensor x0 = at::randn({2, 256, 1024}, opts).to(at::kBFloat16);
  const at::Tensor w0 = at::randn({3072, 1024}, opts) * 0.02;
  const at::Tensor dy = at::randn({2, 256, 3072}, opts).to(at::kBFloat16);
  for (const Fp8Scaling scaling : {Fp8Scaling::kTensor, Fp8Scaling::kRow}) {
    const at::Tensor x = x0.clone().requires_grad_(true), w = w0.clone().requires_grad_(true);
    fp8_linear(x, w, scaling).backward(dy);
    const at::Tensor xb = x0.clone().requires_grad_(true), wb = w0.clone().requires_grad_(true);
    at::linear(xb, wb.to(at::kBFloat16)).backward(dy);
    const at::Tensor y8 = fp8_linear(x0, w0, scaling), yb = at::linear(x0, w0.to(at::kBFloat16));
    EXPECT_LT(relative_error(y8, yb), 0.06) << fp8_scaling_name(scaling);
    EXPECT_LT(relative_error(x.grad(), xb.grad()), 0.10) << fp8_scaling_name(scaling);
    EXPECT_LT(relative_error(w.grad(), wb.grad()), 0.10) << fp8_scaling_name(scaling);
    EXPECT_EQ(w.grad().scalar_type(), at::kFloat);
    EXPECT_EQ(x.grad().scalar_type(), at::kBFloat16);
  }
}

}  // namespace
}  // namespace cca
