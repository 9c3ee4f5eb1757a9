#include "attention/qk_convs.h"

#include <ATen/ATen.h>

namespace cca {
namespace {

// The convs start as the identity (current-token tap 1, or I_d per head; other taps and biases
// 0), so at step 0 the stack passes q⁰, k⁰ through and CCA starts as normalised attention on
// the projections plus the q-k mean (MHA/GQA: as the plain variant). The zero taps still get
// gradients (they multiply earlier tokens), so the convs learn from there. PyTorch's default
// uniform init would instead shrink the grouped conv's output by ~√3 and add random bias offsets
// to every query and key.
torch::nn::Conv1d depthwise_conv(int64_t channels, int64_t kernel) {
  torch::nn::Conv1d conv(torch::nn::Conv1dOptions(channels, channels, kernel).groups(channels));
  at::NoGradGuard no_grad;
  conv->weight.zero_();
  conv->weight.select(2, kernel - 1).fill_(1.0);
  conv->bias.zero_();
  return conv;
}

torch::nn::Conv1d grouped_conv(int64_t channels, int64_t groups, int64_t kernel) {
  torch::nn::Conv1d conv(torch::nn::Conv1dOptions(channels, channels, kernel).groups(groups));
  const int64_t d = channels / groups;
  at::NoGradGuard no_grad;
  conv->weight.zero_();
  conv->weight.select(2, kernel - 1).view({groups, d, d}).copy_(at::eye(d).expand({groups, d, d}));
  conv->bias.zero_();
  return conv;
}

}  // namespace

QkConvModules::QkConvModules(torch::nn::Module& owner, int64_t convs, int64_t channels,
                             int64_t heads, int64_t kernel_0, int64_t kernel_1) {
  if (convs < 1) return;
  list_ = owner.register_module("conv_qk", torch::nn::ModuleList());
  depthwise_ = depthwise_conv(channels, kernel_0);
  list_->push_back(depthwise_);
  if (convs == 2) {
    grouped_ = grouped_conv(channels, heads, kernel_1);
    list_->push_back(grouped_);
  }
}

CcaConvWeights QkConvModules::weights() const {
  CcaConvWeights w;
  if (depthwise_) w = {depthwise_->weight, depthwise_->bias, {}, {}};
  if (grouped_) {
    w.grouped_weight = grouped_->weight;
    w.grouped_bias = grouped_->bias;
  }
  return w;
}

}  // namespace cca
