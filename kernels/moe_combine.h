// The MoE combine in one kernel each way: every token's k expert outputs, weighted by its gates
// and summed, read straight from the expert-ordered rows. LibTorch runs it as a gather into slot
// order, a broadcast multiply and a reduction (and three more passes backward), each over
// [tokens, k, width].
#pragma once

#include <ATen/ATen.h>

namespace cca::kernels {

// rows: [T·k, E] expert outputs in expert order (bf16, fp16 or fp32, contiguous, E a multiple of
// 16 bytes' worth of elements); row_of_slot: [T·k] int64, slot t·k + j → its row; gates: [T, k]
// fp32. Returns out[t] = Σ_j gates[t, j] · rows[row_of_slot[t·k + j]], summed over j in order in
// fp32 and rounded once to rows' dtype.
at::Tensor moe_combine_forward_cuda(const at::Tensor& rows, const at::Tensor& row_of_slot,
                                    const at::Tensor& gates);

struct MoeCombineGrads {
  at::Tensor rows;  // [T·k, E] in rows' dtype: gates[t, j] · grad_out[t] at row_of_slot[t·k + j]
  at::Tensor gates;  // [T, k] fp32: grad_out[t] · rows[row_of_slot[t·k + j]]
};

// The gradients of moe_combine_forward_cuda for grad_out [T, E] (rows' dtype, contiguous).
MoeCombineGrads moe_combine_backward_cuda(const at::Tensor& grad_out, const at::Tensor& rows,
                                          const at::Tensor& row_of_slot, const at::Tensor& gates);

// Whether the kernels take these tensors (else the caller uses LibTorch ops).
bool moe_combine_supported(const at::Tensor& rows, const at::Tensor& gates);

}  // namespace cca::kernels
