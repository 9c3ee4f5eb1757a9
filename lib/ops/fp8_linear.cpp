#include "ops/fp8_linear.h"

#include <torch/autograd.h>

#include <map>
#include <mutex>
#include <utility>

#include "ops/autocast.h"
#include "util/format.h"

namespace cca {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

thread_local Fp8Mode g_fp8_mode;

// Layer shapes (in, out) met in fp8 mode → why they run bf16 (empty: they run fp8).
std::mutex g_layers_mutex;
std::map<std::pair<int64_t, int64_t>, std::string> g_layers;

void note_layer(int64_t in, int64_t out, const std::string& problem) {
  const std::lock_guard<std::mutex> lock(g_layers_mutex);
  g_layers.emplace(std::make_pair(in, out), problem);
}

// Forward products take fast accumulation (the output is rounded to bf16 anyway); the gradient
// products accumulate in full precision, as they sum over many more terms (dW over every token).
constexpr bool kFastForward = true;
constexpr bool kFastBackward = false;

class Fp8LinearFunction : public torch::autograd::Function<Fp8LinearFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight,
                            int64_t scaling_code) {
    const auto scaling = static_cast<Fp8Scaling>(scaling_code);
    const at::Tensor x2d = x.reshape({-1, x.size(-1)});
    const Fp8Tensor xq = quantize_fp8(x2d, at::kFloat8_e4m3fn, scaling);
    const Fp8Tensor wq = quantize_fp8(weight, at::kFloat8_e4m3fn, scaling);
    ctx->saved_data["scaling"] = scaling_code;
    ctx->saved_data["x_dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["x_sizes"] = x.sizes().vec();
    ctx->saved_data["w_dtype"] = static_cast<int64_t>(weight.scalar_type());
    if (scaling == Fp8Scaling::kTensor) {
      // One scale per tensor: backward transposes these fp8 copies (a quarter of fp32 x's bytes).
      ctx->save_for_backward({xq.data, xq.scale, wq.data, wq.scale});
    } else {
      // Row scales run along K; backward reduces over the other dimension and must requantise.
      const at::Tensor x_kept = x2d.scalar_type() == at::kFloat ? x2d.to(at::kBFloat16) : x2d;
      ctx->save_for_backward({x_kept, weight});
    }
    std::vector<int64_t> out_sizes = x.sizes().vec();
    out_sizes.back() = weight.size(0);
    return fp8_matmul_nt(xq, wq, at::kBFloat16, kFastForward).view(out_sizes);
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const auto scaling = static_cast<Fp8Scaling>(ctx->saved_data["scaling"].toInt());
    const auto x_dtype = static_cast<at::ScalarType>(ctx->saved_data["x_dtype"].toInt());
    const auto w_dtype = static_cast<at::ScalarType>(ctx->saved_data["w_dtype"].toInt());
    const std::vector<int64_t> x_sizes = ctx->saved_data["x_sizes"].toIntVector();
    const tensor_list saved = ctx->get_saved_variables();
    const at::Tensor dy = grads[0].reshape({-1, grads[0].size(-1)});
    const bool tensor = scaling == Fp8Scaling::kTensor;
    const bool want_dx = ctx->needs_input_grad(0), want_dw = ctx->needs_input_grad(1);
    // Both products as a·bᵀ with the reduction dimension innermost: dX = dy·(Wᵀ)ᵀ reduces over
    // the outputs, dW = dyᵀ·(xᵀ)ᵀ over the tokens. Tensor-wise operands are transposed as fp8;
    // row-wise ones are quantised again along their other dimension.
    const Fp8Tensor dy_q =
        tensor || want_dx ? quantize_fp8(dy, at::kFloat8_e5m2, scaling) : Fp8Tensor{};
    at::Tensor dx, dw;
    if (want_dx) {
      const Fp8Tensor w_t = tensor ? transpose_fp8({saved[2], saved[3]})
                                   : quantize_fp8(saved[1].t(), at::kFloat8_e4m3fn, scaling);
      dx = fp8_matmul_nt(dy_q, w_t, at::kBFloat16, kFastBackward).to(x_dtype).view(x_sizes);
    }
    if (want_dw) {
      const Fp8Tensor x_t = tensor ? transpose_fp8({saved[0], saved[1]})
                                   : quantize_fp8(saved[0].t(), at::kFloat8_e4m3fn, scaling);
      const Fp8Tensor dy_t =
          tensor ? transpose_fp8(dy_q) : quantize_fp8(dy.t(), at::kFloat8_e5m2, scaling);
      // fp32 straight out of the tensor-wise GEMM for a master weight. Row-wise scaled GEMMs
      // are only relied on with bf16 output here, so their dW is rounded to bf16 as autocast's.
      const at::ScalarType out = tensor ? w_dtype : at::kBFloat16;
      dw = fp8_matmul_nt(dy_t, x_t, out, kFastBackward).to(w_dtype);
    }
    return {dx, dw, at::Tensor()};
  }
};

}  // namespace

at::Tensor fp8_linear(const at::Tensor& x, const at::Tensor& weight, Fp8Scaling scaling) {
  return Fp8LinearFunction::apply(x, weight, static_cast<int64_t>(scaling));
}

std::string fp8_shape_problem(int64_t rows, int64_t in, int64_t out) {
  if (in % 16 != 0) return format("in {} is not a multiple of 16", in);
  if (out % 16 != 0) return format("out {} is not a multiple of 16", out);
  if (rows % 16 != 0) return format("{} rows (tokens) are not a multiple of 16", rows);
  return {};
}

std::optional<Fp8Scaling> fp8_scaling_for(const at::Tensor& x, int64_t in, int64_t out) {
  const Fp8Mode mode = g_fp8_mode;
  if (!mode.enabled || in <= 0 || x.dim() < 1 || x.size(-1) != in) return std::nullopt;
  // The token count only decides this call (a decode step has a handful); the layer's own
  // widths decide it for good and go into the summary.
  note_layer(in, out, fp8_shape_problem(16, in, out));
  if (!fp8_shape_problem(x.numel() / in, in, out).empty()) return std::nullopt;
  return mode.scaling;
}

at::Tensor hidden_linear(const at::Tensor& x, const at::Tensor& weight) {
  if (weight.dim() == 2) {
    // Quantising the fp32 master weight directly skips the bf16 copy and returns dW in fp32.
    const std::optional<Fp8Scaling> scaling = fp8_scaling_for(x, weight.size(1), weight.size(0));
    if (scaling) return fp8_linear(x, weight, *scaling);
  }
  const std::optional<at::ScalarType> compute = autocast_dtype(x);
  const bool cast = compute && weight.scalar_type() == at::kFloat && *compute != at::kFloat;
  return at::linear(x, cast ? autocast_weight(weight, *compute) : weight);
}

std::string fp8_layer_summary() {
  const std::lock_guard<std::mutex> lock(g_layers_mutex);
  std::string fp8, fallback;
  for (const auto& [shape, problem] : g_layers) {
    const std::string name = format("{}→{}", shape.first, shape.second);
    if (problem.empty()) {
      fp8 += (fp8.empty() ? "" : ", ") + name;
    } else {
      fallback += (fallback.empty() ? "" : ", ") + name + " (" + problem + ")";
    }
  }
  if (fp8.empty() && fallback.empty()) return {};
  return format("fp8: {}; bf16: {}", fp8.empty() ? "none" : fp8,
                fallback.empty() ? "none" : fallback);
}

Fp8Mode current_fp8_mode() {
  return g_fp8_mode;
}

Fp8ModeScope::Fp8ModeScope(Fp8Mode mode) : previous_(g_fp8_mode) {
  g_fp8_mode = mode;
}

Fp8ModeScope::~Fp8ModeScope() {
  g_fp8_mode = previous_;
}

}  // namespace cca
