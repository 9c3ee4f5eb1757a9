// Softmax cross-entropy over rows of logits in two passes over each row (llm.c's fused
// classifier, generalised): the first finds the row's log-sum-exp online, the second overwrites
// the logits with their gradient. Replaces LibTorch's logsumexp → gather → sub → exp → mul →
// scatter → cast chain, about seven passes over [n, V].
#pragma once

#include <ATen/ATen.h>

namespace cca::kernels {

// logits: CUDA [n, V] contiguous in bf16, fp16 or fp32; targets: int64 [n], −1 = ignored.
// Fills loss[n] and z[n] (float32): −log softmax(logits)[target] and logsumexp² on valid rows,
// 0 on ignored ones. With write_grad, logits is overwritten (in its dtype) with the gradient of
// loss + z_weight·z per row: softmax·(1 + 2·z_weight·lse) − onehot(target), 0 on ignored rows.
// Sums are taken in float32.
void cross_entropy_rows_cuda(at::Tensor& logits, const at::Tensor& targets, double z_weight,
                             bool write_grad, at::Tensor& loss, at::Tensor& z);

}  // namespace cca::kernels
