#include "bench/attention_bench.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/cuda.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <random>

#include "attention/attention.h"
#include "attention/cca_fused.h"
#include "attention/cca_reference.h"
#include "bench/bench_case.h"
#include "bench/variants.h"
#include "config/attention_variant.h"
#include "config/config.h"
#include "config/geometry.h"
#include "model/transformer.h"
#include "ops/device.h"
#include "ops/documents.h"
#include "ops/rope.h"
#include "util/error.h"

namespace cca::bench {
namespace {

using Clock = std::chrono::steady_clock;

void device_synchronize() {
  if (cuda_available()) torch::cuda::synchronize();
}

// Mean milliseconds per call: the best of three timed runs of `iters` calls after `warmup`.
double time_ms(const std::function<void()>& f, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) f();
  device_synchronize();
  double best = std::numeric_limits<double>::infinity();
  for (int rep = 0; rep < 3; ++rep) {
    const auto start = Clock::now();
    for (int i = 0; i < iters; ++i) f();
    device_synchronize();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  return best / iters;
}

struct CoreChoice {
  CoreBackend best = CoreBackend::automatic;
  std::map<std::string, double> fwdbwd_ms;  // per backend that ran
  double best_tflops = 0;
};

// Times the causal core of one variant's shapes (fwd+bwd, K/V not repeated) on each SDPA
// backend and keeps the fastest.
CoreChoice choose_core(const AttentionGeometry& g, int64_t B, int64_t S,
                       const at::TensorOptions& opts, const AttentionBenchOptions& o) {
  const int64_t hq = g.n_q_heads, hkv = g.variant().core_kv_heads(g);
  const int64_t dqk = g.head_dim, dv = g.v_head_dim;
  const auto make = [&](int64_t h, int64_t dim) {
    return at::randn({B, S, h, dim}, opts).transpose(1, 2).requires_grad_(true);
  };
  const at::Tensor q = make(hq, dqk), k = make(hkv, dqk), v = make(hkv, dv);
  const at::Tensor grad = at::randn({B, hq, S, dv}, opts);
  CoreChoice choice;
  double best = std::numeric_limits<double>::infinity();
  for (CoreBackend b : {CoreBackend::flash, CoreBackend::cudnn, CoreBackend::efficient}) {
    try {
      const double ms = time_ms(
          [&] {
            const at::Tensor out = core_attention(q, k, v, 1.0 / std::sqrt(double(dqk)), b);
            torch::autograd::grad({out}, {q, k, v}, {grad});
          },
          1, std::max(1, o.iters / 2));
      choice.fwdbwd_ms[core_backend_name(b)] = ms;
      if (ms < best) {
        best = ms;
        choice.best = b;
      }
    } catch (const std::exception&) {  // the backend does not take these shapes
    }
  }
  // Causal: half of 4·B·S²·H·(dqk + dv)/2 forward, 2.5× that backward.
  const double fwd_flops = 2.0 * B * double(S) * S * hq * (dqk + dv) / 2.0;
  choice.best_tflops = 3.5 * fwd_flops / (best * 1e-3) / 1e12;
  return choice;
}

// Rows of S tokens packed with documents whose lengths are drawn uniformly from `lengths`
// (seeded, so every variant sees the same packing); the last document of a row is cut at S.
Documents synthetic_documents(int64_t B, int64_t S, const std::vector<int64_t>& lengths,
                              const at::Device& device) {
  constexpr int64_t kSeparator = 1;
  std::mt19937_64 random(20251207);
  std::uniform_int_distribution<size_t> pick(0, lengths.size() - 1);
  at::Tensor tokens = at::full({B, S}, 2, at::kLong);
  int64_t* data = tokens.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < S; t += lengths[pick(random)]) data[b * S + t] = kSeparator;
  }
  return find_documents(tokens, {kSeparator, /*opens_document=*/true}, false, device);
}

struct LayerTimes {
  double fwd_ms, fwdbwd_ms;
};

// The layer's forward, and forward + backward, over x [B, S, E] (with `documents` when given).
LayerTimes time_layer(const Config& c, CoreBackend core, int64_t B, int64_t S,
                      const at::TensorOptions& opts, const AttentionBenchOptions& o,
                      const Documents* documents = nullptr) {
  AttentionOptions options = attention_options(c);
  options.core = core;
  auto layer = make_attention(attention_geometry(c), options);
  layer->to(opts.device(), opts.dtype().toScalarType());
  const at::Tensor x = at::randn({B, S, c.model.d_model}, opts);
  const at::Tensor grad = at::randn_like(x);
  LayerTimes t{};
  {
    const at::NoGradGuard no_grad;
    t.fwd_ms = time_ms([&] { layer->forward(x, nullptr, documents); }, o.warmup, o.iters);
  }
  const at::Tensor xg = x.detach().requires_grad_(true);
  std::vector<at::Tensor> inputs = layer->parameters();
  inputs.push_back(xg);
  t.fwdbwd_ms = time_ms(
      [&] { torch::autograd::grad({layer->forward(xg, nullptr, documents)}, inputs, {grad}); },
      o.warmup, o.iters);
  return t;
}

// The baselines rotate q and k with Rotary::apply in plain ops (ops/rope.cpp); its share of their
// layer time is reported so that a fused-RoPE baseline can be estimated (layer − rope).
struct RopeTimes {
  double fwd_ms = 0, fwdbwd_ms = 0;
};

RopeTimes time_rope(const AttentionGeometry& g, int64_t B, int64_t S, const at::TensorOptions& opts,
                    const AttentionBenchOptions& o) {
  RopeTimes t;
  const AttentionVariant::RopeShape shape = g.variant().standalone_rope(g);
  if (shape.width == 0 || g.rope_dim == 0) return t;
  const int64_t width = shape.width, hkv = shape.key_heads;
  const at::Tensor q = at::randn({B, S, g.n_q_heads, width}, opts).requires_grad_(true);
  const at::Tensor k = at::randn({B, S, hkv, width}, opts).requires_grad_(true);
  const Rotary rotary(g.rope_dim, 10000.0);
  {
    const at::NoGradGuard no_grad;
    t.fwd_ms = time_ms([&] { rotary.apply(q, 0), rotary.apply(k, 0); }, o.warmup, o.iters);
  }
  t.fwdbwd_ms = time_ms(
      [&] {
        const at::Tensor rq = rotary.apply(q, 0), rk = rotary.apply(k, 0);
        torch::autograd::grad({rq, rk}, {q, k}, {at::ones_like(rq), at::ones_like(rk)});
      },
      o.warmup, o.iters);
  return t;
}

struct PrologueTimes {
  double plain_fwd, fused_fwd, plain_fwdbwd, fused_fwdbwd, fused_gbps;
};

// The CCA-specific ops alone (cca_prologue vs cca_prologue_fused) on a layer's weights.
PrologueTimes time_prologue(const Config& c, int64_t B, int64_t S, const at::TensorOptions& opts,
                            const AttentionBenchOptions& o) {
  const CcaGeometry g = variants::cca_geometry(attention_geometry(c));
  auto layer = make_attention(g, attention_options(c));
  layer->to(opts.device(), opts.dtype().toScalarType());
  auto params = layer->named_parameters();
  const CcaConvWeights w{params["conv_qk.0.weight"], params["conv_qk.0.bias"],
                         params["conv_qk.1.weight"], params["conv_qk.1.bias"]};
  const int64_t width_k = g.kv_latent_width();
  const auto leaf = [&](int64_t width) {
    return at::randn({B, S, width}, opts).requires_grad_(true);
  };
  const CcaProjections p{leaf(g.q_latent_width()), leaf(width_k), leaf(width_k / 2),
                         leaf(width_k / 2)};
  const AttentionOptions options = attention_options(c);
  const Rotary rotary(g.rope_dim, options.rope_theta, options.rope_scaling);
  const at::Tensor inv_freq = cca_rope_inverse_frequencies(g.rope_dim, options.rope_theta,
                                                           options.rope_scaling, opts.device());
  const auto plain = [&] { return cca_prologue(g, rotary, w, params["temp"].exp(), p, {}, {}, 0); };
  const auto fused = [&] { return cca_prologue_fused(g, inv_freq, w, params["temp"].exp(), p); };
  const std::vector<at::Tensor> leaves = {p.q0,
                                          p.k0,
                                          p.v_current,
                                          p.v_delayed,
                                          w.depthwise_weight,
                                          w.depthwise_bias,
                                          w.grouped_weight,
                                          w.grouped_bias,
                                          params["temp"]};
  const at::Tensor gq = at::randn({B, S, g.n_q_heads, g.head_dim}, opts);
  const at::Tensor gk = at::randn({B, S, g.n_kv_heads, g.head_dim}, opts);
  const auto backward = [&](const CcaPrologueOutput& out) {
    torch::autograd::grad({out.q, out.k, out.v}, leaves, {gq, gk, gk});
  };
  PrologueTimes t{};
  {
    const at::NoGradGuard no_grad;
    t.plain_fwd = time_ms([&] { plain(); }, o.warmup, o.iters);
    t.fused_fwd = time_ms([&] { fused(); }, o.warmup, o.iters);
  }
  t.plain_fwdbwd = time_ms([&] { backward(plain()); }, o.warmup, o.iters);
  t.fused_fwdbwd = time_ms([&] { backward(fused()); }, o.warmup, o.iters);
  // Least traffic of the forward: read z = [q⁰ ‖ k⁰] and both value halves, write q̂, k̂, ṽ.
  const double bytes = 2.0 * B * S * (g.conv_channels() + width_k) * opts.dtype().itemsize();
  t.fused_gbps = bytes / (t.fused_fwd * 1e-3) / 1e9;
  return t;
}

std::string fixed(double v, int digits) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(digits) << v;
  return s.str();
}

double field(const Json::Object& o, const char* key) {
  return o.at(key).as_double(key);
}

// One variant's layer at (B, S): its core backend by measurement (CUDA; the CPU has exact math
// only), the layer forward and backward, the share of standalone RoPE and, with `documents`,
// the same layer over packed documents.
Json::Object layer_case(const Config& c, int64_t B, int64_t S, const at::TensorOptions& opts,
                        const AttentionBenchOptions& o, const Documents* documents) {
  const CoreChoice core = opts.device().is_cuda()
                              ? choose_core(attention_geometry(c), B, S, opts, o)
                              : CoreChoice{CoreBackend::math, {}, 0};
  const LayerTimes t = time_layer(c, core.best, B, S, opts, o);
  const RopeTimes rope = time_rope(attention_geometry(c), B, S, opts, o);
  Json::Object core_ms;
  for (const auto& [backend, ms] : core.fwdbwd_ms) core_ms[backend] = ms;
  Json::Object row{{"core", core_backend_name(core.best)},
                   {"core_fwdbwd_ms", core_ms},
                   {"core_fwdbwd_tflops", core.best_tflops},
                   {"fwd_ms", t.fwd_ms},
                   {"bwd_ms", t.fwdbwd_ms - t.fwd_ms},
                   {"fwdbwd_ms", t.fwdbwd_ms},
                   {"rope_fwd_ms", rope.fwd_ms},
                   {"rope_bwd_ms", rope.fwdbwd_ms - rope.fwd_ms}};
  if (documents != nullptr) {
    // What training runs by default (attention.core: auto: varlen flash), then, where the
    // shapes allow it, with cuDNN's ragged attention asked for (attention.core: cudnn).
    const LayerTimes d = time_layer(c, CoreBackend::automatic, B, S, opts, o, documents);
    row["documents_fwd_ms"] = d.fwd_ms;
    row["documents_fwdbwd_ms"] = d.fwdbwd_ms;
    row["documents_fwdbwd_overhead"] = d.fwdbwd_ms / t.fwdbwd_ms - 1.0;
    const AttentionGeometry g = attention_geometry(c);
    if (opts.device().is_cuda() &&
        cudnn_ragged_shape(g.n_q_heads, g.variant().core_kv_heads(g), g.head_dim, 0)) {
      const LayerTimes cudnn = time_layer(c, CoreBackend::cudnn, B, S, opts, o, documents);
      row["documents_cudnn_fwdbwd_ms"] = cudnn.fwdbwd_ms;
      row["documents_cudnn_fwdbwd_overhead"] = cudnn.fwdbwd_ms / t.fwdbwd_ms - 1.0;
    }
  }
  return row;
}

// Speed-ups over MHA's layer at the same shape (0 when MHA did not run there).
void add_speedups(Json::Object& row, const Json::Object* mha) {
  const Json::Object& base = mha != nullptr ? *mha : row;
  const bool have_base = mha != nullptr;
  const auto ratio = [&](double a, double b) { return have_base && b > 0 ? a / b : 0.0; };
  const double fwd = field(row, "fwd_ms"), bwd = field(row, "bwd_ms");
  const double rope_f = field(row, "rope_fwd_ms"), rope_b = field(row, "rope_bwd_ms");
  const double base_fwd = have_base ? field(base, "fwd_ms") : 0;
  const double base_bwd = have_base ? field(base, "bwd_ms") : 0;
  const double base_rope_f = have_base ? field(base, "rope_fwd_ms") : 0;
  const double base_rope_b = have_base ? field(base, "rope_bwd_ms") : 0;
  row["fwd_speedup_vs_mha"] = ratio(base_fwd, fwd);
  row["bwd_speedup_vs_mha"] = ratio(base_bwd, bwd);
  row["fwd_speedup_vs_mha_without_rope"] = ratio(base_fwd - base_rope_f, fwd - rope_f);
  row["bwd_speedup_vs_mha_without_rope"] = ratio(base_bwd - base_rope_b, bwd - rope_b);
}

void print_layer_header(int64_t S, int64_t B, const AttentionBenchOptions& o) {
  std::cout << "\nS = " << S << ", B = " << B << "  (E = " << o.model_dim << ", d = " << o.head_dim
            << ", " << o.dtype << ", " << o.device << ")\n"
            << std::left << std::setw(10) << "variant" << std::setw(10) << "core" << std::right
            << std::setw(11) << "core TF/s" << std::setw(10) << "fwd ms" << std::setw(10)
            << "bwd ms" << std::setw(12) << "fwd+bwd ms" << std::setw(10) << "fwd xMHA"
            << std::setw(10) << "bwd xMHA" << std::setw(9) << "rope f" << std::setw(9) << "rope b"
            << std::setw(10) << "f xMHA-r" << std::setw(10) << "b xMHA-r" << std::setw(10)
            << "peak GiB";
  if (!o.document_lengths.empty())
    std::cout << std::setw(12) << "docs f ms" << std::setw(12) << "docs f+b" << std::setw(10)
              << "overhead" << std::setw(12) << "cudnn f+b" << std::setw(10) << "overhead";
  std::cout << "\n";
}

void print_layer_row(const std::string& name, const Json::Object& r) {
  std::cout << std::left << std::setw(10) << name;
  if (!case_succeeded(r)) {
    std::cout << r.at("status").as_string("status") << ": " << r.at("error").as_string("error")
              << std::endl;
    return;
  }
  std::cout << std::setw(10) << r.at("core").as_string("core") << std::right;
  const std::pair<const char*, int> columns[] = {{"core_fwdbwd_tflops", 11},
                                                 {"fwd_ms", 10},
                                                 {"bwd_ms", 10},
                                                 {"fwdbwd_ms", 12},
                                                 {"fwd_speedup_vs_mha", 10},
                                                 {"bwd_speedup_vs_mha", 10},
                                                 {"rope_fwd_ms", 9},
                                                 {"rope_bwd_ms", 9},
                                                 {"fwd_speedup_vs_mha_without_rope", 10},
                                                 {"bwd_speedup_vs_mha_without_rope", 10},
                                                 {"peak_memory_gib", 10}};
  for (const auto& [key, width] : columns) {
    const int digits = std::string(key).find("speedup") != std::string::npos ? 2
                       : std::string(key) == "core_fwdbwd_tflops"            ? 0
                                                                             : 3;
    std::cout << std::setw(width) << fixed(field(r, key), digits);
  }
  if (r.count("documents_fwd_ms")) {
    std::cout << std::setw(12) << fixed(field(r, "documents_fwd_ms"), 3) << std::setw(12)
              << fixed(field(r, "documents_fwdbwd_ms"), 3) << std::setw(9)
              << fixed(100.0 * field(r, "documents_fwdbwd_overhead"), 1) << "%";
    if (r.count("documents_cudnn_fwdbwd_ms"))
      std::cout << std::setw(12) << fixed(field(r, "documents_cudnn_fwdbwd_ms"), 3) << std::setw(9)
                << fixed(100.0 * field(r, "documents_cudnn_fwdbwd_overhead"), 1) << "%";
  }
  std::cout << std::endl;
}

// The CCA prologue alone, fused against plain ops.
Json::Object prologue_case(const Config& c, int64_t B, int64_t S, const at::TensorOptions& opts,
                           const AttentionBenchOptions& o) {
  const PrologueTimes t = time_prologue(c, B, S, opts, o);
  return {{"plain_fwd_ms", t.plain_fwd},
          {"fused_fwd_ms", t.fused_fwd},
          {"fwd_speedup", t.plain_fwd / t.fused_fwd},
          {"fused_fwd_gbps", t.fused_gbps},
          {"plain_fwdbwd_ms", t.plain_fwdbwd},
          {"fused_fwdbwd_ms", t.fused_fwdbwd},
          {"fwdbwd_speedup", t.plain_fwdbwd / t.fused_fwdbwd}};
}

void print_prologue_row(const std::string& name, const Json::Object& r) {
  std::cout << "  prologue " << std::left << std::setw(9) << name << std::right;
  if (!case_succeeded(r)) {
    std::cout << " " << r.at("status").as_string("status") << ": "
              << r.at("error").as_string("error") << std::endl;
    return;
  }
  std::cout << " fwd plain " << fixed(field(r, "plain_fwd_ms"), 3) << " ms, fused "
            << fixed(field(r, "fused_fwd_ms"), 3) << " ms (" << fixed(field(r, "fwd_speedup"), 1)
            << "×, " << fixed(field(r, "fused_fwd_gbps"), 0) << " GB/s);  fwd+bwd plain "
            << fixed(field(r, "plain_fwdbwd_ms"), 3) << " ms, fused "
            << fixed(field(r, "fused_fwdbwd_ms"), 3) << " ms ("
            << fixed(field(r, "fwdbwd_speedup"), 1) << "×), peak "
            << fixed(field(r, "peak_memory_gib"), 2) << " GiB" << std::endl;
}

}  // namespace

Json run_attention_bench(const AttentionBenchOptions& o) {
  if (o.device != "cuda" && o.device != "cpu")
    throw Error("cca-bench attention: --device is '" + o.device + "'; allowed: cuda, cpu");
  const bool cuda = o.device == "cuda";
  if (cuda && !cuda_available()) throw Error("cca-bench attention needs a CUDA device");
  for (const int64_t length : o.document_lengths) {
    if (length < 1)
      throw Error("cca-bench attention: --doc-lengths must be positive, got " +
                  std::to_string(length));
  }
  const at::ScalarType dtype = parse_bench_dtype(o.dtype);
  const auto opts = at::TensorOptions().device(cuda ? at::kCUDA : at::kCPU).dtype(dtype);
  Json::Array layers, prologues;
  Json::Object longest;  // variant -> the longest sequence whose layer ran
  for (const int64_t S : o.seq_lens) {
    const int64_t B = std::max<int64_t>(1, o.tokens / S);
    std::optional<Documents> documents;
    if (!o.document_lengths.empty())
      documents = synthetic_documents(B, S, o.document_lengths, opts.device());
    print_layer_header(S, B, o);
    std::optional<Json::Object> mha;  // this length's MHA outcome, the speed-ups' base
    for (const std::string& name : o.variants) {
      const Config c = variant_config(name, o.model_dim, o.head_dim);
      Json::Object outcome = run_fallible_case(
          opts.device(), {{"variant", name}, {"seq", S}, {"batch", B}},
          [&] { return layer_case(c, B, S, opts, o, documents ? &*documents : nullptr); });
      if (case_succeeded(outcome)) {
        if (name == "mha") mha = outcome;
        add_speedups(outcome, mha ? &*mha : nullptr);
        longest[name] = S;
      }
      print_layer_row(name, outcome);
      layers.push_back(Json(std::move(outcome)));
    }
    if (!o.prologue || !cuda) continue;  // the fused prologue is CUDA's alone
    for (const std::string& name : o.variants) {
      if (!has_cca_prologue(name)) continue;
      const Config c = variant_config(name, o.model_dim, o.head_dim);
      Json::Object outcome =
          run_fallible_case(opts.device(), {{"variant", name}, {"seq", S}, {"batch", B}},
                            [&] { return prologue_case(c, B, S, opts, o); });
      print_prologue_row(name, outcome);
      prologues.push_back(Json(std::move(outcome)));
    }
  }
  Json::Array document_lengths(o.document_lengths.begin(), o.document_lengths.end());
  return Json::Object{{"device", describe_device(opts.device())},
                      {"dtype", o.dtype},
                      {"document_lengths", document_lengths},
                      {"model_dim", o.model_dim},
                      {"head_dim", o.head_dim},
                      {"tokens", o.tokens},
                      {"layers", layers},
                      {"longest_seq_per_variant", longest},
                      {"prologue", prologues}};
}

}  // namespace cca::bench
