// Moving routed token copies into expert order and back. Both directions are gathers, forward
// and backward: LibTorch's index_select differentiates into index_add, a scatter with atomics
// (slow in bf16, and its sums land in a different order on every run).
#pragma once

#include <ATen/ATen.h>

namespace cca {

// Slot s = t·k + j is token t's j-th expert choice.
struct SlotOrder {
  at::Tensor row_of_slot;   // [T·k] where each slot sits in expert order
  at::Tensor slot_of_row;   // [T·k] the inverse: which slot each expert-ordered row holds
  at::Tensor token_of_row;  // [T·k] slot_of_row / k
  int64_t top_k = 1;
};

// experts: [T, k] chosen expert ids. Rows are sorted by expert, stably, so each expert's rows
// form one contiguous slice in token order.
SlotOrder sort_slots_by_expert(const at::Tensor& experts);

// [T, E] tokens → [T·k, E] rows in expert order (row i is token token_of_row[i]). The gradient
// of a token is the sum of its k rows' gradients, taken in a fixed order.
at::Tensor dispatch_to_experts(const at::Tensor& tokens, const SlotOrder& order);

// [T·k, E] expert-ordered rows → [T, k, E] back in slot order.
at::Tensor return_to_slots(const at::Tensor& rows, const SlotOrder& order);

// [T·k, E] expert-ordered rows and gates [T, k] → [T, E]: Σ_j gates[t, j] · row of slot t·k + j,
// in the rows' dtype. On CUDA (fp32 gates, k ≤ 8) one kernel each way reads the rows in place
// and sums in fp32; elsewhere return_to_slots, a multiply in the rows' dtype and a sum over k.
at::Tensor combine_from_rows(const at::Tensor& rows, const at::Tensor& gates,
                             const SlotOrder& order);

}  // namespace cca
