#include "optim/optimizer.h"

#include "optim/adamw.h"
#include "optim/muon.h"
#include "optim/weight_decay.h"
#include "util/error.h"

namespace cca {
namespace {

bool muon_kind(const OptimConfig& optim) {
  if (optim.kind == "muon") return true;
  if (optim.kind == "adamw") return false;
  throw Error("optim.kind: unknown optimizer '" + optim.kind + "'; allowed: adamw, muon");
}

// Which optimizer group a parameter falls in, in the order the optimizers walk their groups:
// Muon's matrices, then AdamW's decayed and undecayed parameters.
enum class Group { muon, decayed, undecayed };

Group group_of(const NamedTensor& p, const OptimConfig& optim) {
  if (muon_kind(optim) && orthogonalised_by_muon(p.name, p.tensor)) return Group::muon;
  return takes_weight_decay(p.name, p.tensor, optim) ? Group::decayed : Group::undecayed;
}

}  // namespace

std::unique_ptr<Optimizer> make_optimizer(std::vector<NamedTensor> parameters,
                                          const OptimConfig& optim) {
  if (muon_kind(optim)) return std::make_unique<Muon>(std::move(parameters), optim);
  return std::make_unique<AdamW>(std::move(parameters), optim);
}

std::vector<size_t> clipping_order(const std::vector<NamedTensor>& parameters,
                                   const OptimConfig& optim) {
  std::vector<size_t> order;
  for (Group group : {Group::muon, Group::decayed, Group::undecayed}) {
    for (size_t k = 0; k < parameters.size(); ++k) {
      if (group_of(parameters[k], optim) == group) order.push_back(k);
    }
  }
  return order;
}

std::vector<StateEntry> state_layout(const std::vector<NamedTensor>& parameters,
                                     const OptimConfig& optim) {
  std::vector<StateEntry> layout;
  for (size_t k : clipping_order(parameters, optim)) {
    const std::string& name = parameters[k].name;
    if (group_of(parameters[k], optim) == Group::muon) {
      layout.push_back({kMuonMomentumPrefix + name, k, false});
      continue;
    }
    layout.push_back({"exp_avg/" + name, k, false});
    layout.push_back({"exp_avg_sq/" + name, k, false});
    layout.push_back({"step/" + name, k, true});
  }
  return layout;
}

}  // namespace cca
