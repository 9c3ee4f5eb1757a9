// ZeRO-1 (distributed.zero1): the optimizer state (AdamW's moments and step counts, Muon's
// momentum) sharded across ranks. Every rank still holds all parameters and, after the bucketed
// all-reduce, all gradients; each parameter is owned by one rank (whole tensors, balanced by
// size, decided the same way on every rank), and a rank's optimizer holds state for and updates
// only the parameters it owns. Whole tensors are what Muon needs: it orthogonalises each matrix
// (each expert's, in a stacked expert tensor) as a whole, so the owner does it alone. Around that
// update:
//   clip()              the global gradient norm (over every gradient, in the optimizer's order,
//                       so the value and the clipping are bit-identical to the unsharded
//                       optimizer) and the skip flag, the same on every rank, passed to the
//                       optimizer as `frozen`;
//   share_parameters()  each rank broadcasts the parameters it updated (one flat buffer each);
//   gather_state()      the full optimizer state, in Optimizer::state()'s order, for the
//                       checkpoint, which therefore looks exactly like an unsharded run's.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "ops/named_tensor.h"
#include "optim/grad_clip.h"

namespace cca::dist {

class Communicator;

class Zero1 {
 public:
  Zero1(Communicator& communicator, const std::vector<NamedTensor>& parameters,
        const OptimConfig& optim);

  // What this rank's optimizer is built over, and with which settings (clipping happens in
  // clip()).
  std::vector<NamedTensor> owned_parameters() const;
  OptimConfig local_optim() const;
  // "61 of 62 tensors" style summary: tensors and elements this rank owns.
  std::string describe() const;

  StepReport clip(const at::Tensor& loss, const at::Tensor& frozen);
  // Zeroes every gradient (the optimizer's zero_grad only reaches the owned ones).
  void zero_grad();
  void share_parameters(int64_t step);
  // All ranks call; every rank gets the full list (rank 0 writes it).
  std::vector<NamedTensor> gather_state(const std::vector<NamedTensor>& local_state);

 private:
  Communicator& communicator_;
  std::vector<NamedTensor> parameters_;  // registration order
  std::vector<int> owner_;               // parameter -> rank
  std::vector<size_t> clipping_order_;   // the optimizer's order (optim/optimizer.h)
  OptimConfig optim_;
};

}  // namespace cca::dist
