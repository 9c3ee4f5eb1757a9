// How the runs of a report relate, read from their configs: the keys in which they differ, the
// arms they form (runs identical but for the seed) and, when a tuned key such as the learning rate
// also varies, the treatments compared at their best arm. A difference between treatments is
// called real only when its 95% interval excludes zero (statistics.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "sweep/run_folder.h"
#include "sweep/statistics.h"

namespace cca::sweep {

// A config key whose value is not the same in every run. values[i] is run i's value as YAML text,
// or "" where the key does not apply (a key of another attention variant).
struct KeyDifference {
  std::string key;
  std::vector<std::string> values;
};

// Every such key, in the schema's order; run.* (where a run's folder is) never counts, and a key of
// one attention variant counts only when runs of that variant disagree on it.
std::vector<KeyDifference> differing_keys(const std::vector<RunFolder>& runs);

// Runs identical in every key but the seed (train.seed).
struct Arm {
  std::string label;                 // the tuned keys' values ("lr=0.003"), "" without tuning
  std::vector<double> tuned_values;  // the tuned keys' numeric values (for plots)
  std::vector<size_t> runs;          // indices of the runs counted, sorted by seed
  std::vector<int64_t> seeds;
  std::vector<double> losses;  // each counted run's final validation loss
  Estimate loss;               // valid when !runs.empty()
};

// Arms that differ only in the tuned keys: one thing being compared, at its best arm.
struct Treatment {
  std::string name;
  std::vector<Arm> arms;  // in order of the tuned values
  size_t best = 0;        // the arm with the lowest mean final validation loss
};

struct Comparison {
  size_t a = 0, b = 0;  // treatments; the difference is b − a
  bool paired = false;  // both best arms ran the same seeds: differences per seed
  Estimate difference;
};

struct SeedAnalysis {
  std::vector<std::string> tuned_keys;  // the requested tuned keys that vary
  std::vector<Treatment> treatments;    // in the order of their first run
  std::vector<Comparison> comparisons;  // every pair at their best arms
  std::vector<std::string> excluded;    // "run: why" for runs not counted (unfinished, no eval)
  int fewest_seeds = 0;                 // over the arms that count
};

// Groups `runs` by their config: `tune_keys` (e.g. optim.lr) pick each treatment's best arm.
SeedAnalysis analyse_seeds(const std::vector<RunFolder>& runs,
                           const std::vector<std::string>& tune_keys);

// Every run's place for plotting, unfinished ones included: its treatment (its config less the
// seed and the tuned keys: one colour), its arm (the tuned keys' values) and its seed (one line
// style).
struct RunGroups {
  std::vector<std::string> treatments;  // names, in the order of their first run
  std::vector<int64_t> seeds;           // every seed, ascending
  std::vector<size_t> treatment_of;     // per run, an index into treatments
  std::vector<std::string> arm_of;      // per run, Arm::label
  std::vector<size_t> seed_of;          // per run, an index into seeds
};

RunGroups group_runs(const std::vector<RunFolder>& runs, const std::vector<std::string>& tune_keys);

}  // namespace cca::sweep
