#include "sweep/arms.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <set>

#include "config/attention_variant.h"
#include "config/schema.h"
#include "util/format.h"

namespace cca::sweep {
namespace {

constexpr const char* kSeedKey = "train.seed";

std::string last_part(const std::string& key) {
  return key.substr(key.rfind('.') + 1);
}

// Which attention variants read each variant-only key.
const std::map<std::string, std::set<std::string>>& variant_key_owners() {
  static const auto owners = [] {
    std::map<std::string, std::set<std::string>> map;
    for (const AttentionVariant* variant : attention_variants()) {
      for (const KeySpec& key : variant->keys()) map[key.path].insert(variant->name());
    }
    return map;
  }();
  return owners;
}

// Every key's value as YAML text, "" where it does not apply to this run.
std::map<std::string, std::string> key_values(const RunFolder& run) {
  Config config = run.loaded.config;
  std::map<std::string, std::string> values;
  for (const KeySpec& key : config_keys()) {
    if (key.path.rfind("run.", 0) == 0) continue;
    const auto owners = variant_key_owners().find(key.path);
    const bool applies =
        owners == variant_key_owners().end() || owners->second.count(config.attention.kind) > 0;
    values[key.path] = applies ? value_text(key, config) : "";
  }
  return values;
}

std::string joined_values(const std::vector<KeyDifference>& diffs, size_t run,
                          const std::set<std::string>& keys) {
  std::string text;
  for (const KeyDifference& d : diffs) {
    if (keys.count(d.key)) text += d.key + "=" + d.values[run] + "\n";
  }
  return text;
}

// The run name without its seed and tuned-key fragments ("cca,lr=0.003,seed=2" → "cca",
// "mha-seed7" → "mha").
std::string stripped_name(const std::string& name, const std::vector<std::string>& keys) {
  std::string out = name;
  for (const std::string& key : keys) {
    const std::string part = last_part(key);
    out = std::regex_replace(out, std::regex("(^|[,+])" + part + "=[^,+]*"), "");
    out = std::regex_replace(out, std::regex("[-_]" + part + "[-_=]?[0-9]+$"), "");
  }
  while (!out.empty() && (out.front() == ',' || out.front() == '+')) out.erase(0, 1);
  return out;
}

double numeric_or_nan(const std::string& text) {
  try {
    size_t used = 0;
    const double v = std::stod(text, &used);
    return used == text.size() ? v : std::nan("");
  } catch (const std::exception&) {
    return std::nan("");
  }
}

std::string treatment_name(const std::vector<RunFolder>& runs, const std::vector<size_t>& members,
                           const std::vector<std::string>& varying, const std::string& signature) {
  std::set<std::string> names;
  for (size_t i : members) names.insert(stripped_name(runs[i].name, varying));
  if (names.size() == 1 && !names.begin()->empty()) return *names.begin();
  // "key=value\n..." of the keys that tell treatments apart, on one line.
  std::string text = signature;
  if (!text.empty()) text.pop_back();
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text.empty() ? runs[members.front()].name : text;
}

void finish_arm(Arm& arm, const std::vector<RunFolder>& runs, const std::vector<int64_t>& seeds) {
  std::sort(arm.runs.begin(), arm.runs.end(),
            [&](size_t x, size_t y) { return seeds[x] < seeds[y]; });
  for (size_t i : arm.runs) {
    arm.seeds.push_back(seeds[i]);
    arm.losses.push_back(runs[i].outcome.final_eval->val_loss);
  }
  arm.loss = estimate_mean(arm.losses);
}

void compare_treatments(SeedAnalysis& analysis) {
  const auto& t = analysis.treatments;
  for (size_t a = 0; a < t.size(); ++a) {
    for (size_t b = a + 1; b < t.size(); ++b) {
      const Arm& x = t[a].arms[t[a].best];
      const Arm& y = t[b].arms[t[b].best];
      Comparison c{a, b, x.seeds == y.seeds && x.seeds.size() >= 2, {}};
      c.difference =
          c.paired ? paired_difference(x.losses, y.losses) : welch_difference(x.losses, y.losses);
      analysis.comparisons.push_back(c);
    }
  }
}

// The differing keys split into tuned ones (in `tune_keys`) and the others that tell treatments
// apart (the seed aside).
struct KeyRoles {
  std::vector<KeyDifference> diffs;
  std::vector<std::string> tuned_keys;  // in the schema's order
  std::set<std::string> tuned, other;
};

KeyRoles key_roles(const std::vector<KeyDifference>& diffs,
                   const std::vector<std::string>& tune_keys) {
  KeyRoles roles{diffs, {}, {}, {}};
  for (const KeyDifference& d : diffs) {
    const bool is_tuned = std::count(tune_keys.begin(), tune_keys.end(), d.key) > 0;
    if (is_tuned) roles.tuned_keys.push_back(d.key);
    if (is_tuned) roles.tuned.insert(d.key);
    if (!is_tuned && d.key != kSeedKey) roles.other.insert(d.key);
  }
  return roles;
}

// "lr=0.003,…": run `i`'s values of the tuned keys.
std::string arm_label(const KeyRoles& roles, size_t i, std::vector<double>* numeric = nullptr) {
  std::string label;
  for (const KeyDifference& d : roles.diffs) {
    if (!roles.tuned.count(d.key)) continue;
    label += (label.empty() ? "" : ",") + last_part(d.key) + "=" + d.values[i];
    if (numeric) numeric->push_back(numeric_or_nan(d.values[i]));
  }
  return label;
}

}  // namespace

std::vector<KeyDifference> differing_keys(const std::vector<RunFolder>& runs) {
  std::vector<std::map<std::string, std::string>> values;
  for (const RunFolder& run : runs) values.push_back(key_values(run));
  std::vector<KeyDifference> diffs;
  for (const KeySpec& key : config_keys()) {
    if (values.empty() || !values.front().count(key.path)) continue;
    KeyDifference d{key.path, {}};
    std::set<std::string> applied;  // a variant's key counts only among the runs it applies to
    for (const auto& v : values) {
      d.values.push_back(v.at(key.path));
      if (!d.values.back().empty()) applied.insert(d.values.back());
    }
    if (applied.size() > 1) diffs.push_back(std::move(d));
  }
  return diffs;
}

SeedAnalysis analyse_seeds(const std::vector<RunFolder>& runs,
                           const std::vector<std::string>& tune_keys) {
  SeedAnalysis analysis;
  const KeyRoles roles = key_roles(differing_keys(runs), tune_keys);
  const std::vector<KeyDifference>& diffs = roles.diffs;
  const std::set<std::string>& other = roles.other;
  analysis.tuned_keys = roles.tuned_keys;
  std::vector<std::string> varying = analysis.tuned_keys;
  varying.push_back(kSeedKey);

  std::vector<int64_t> seeds;
  std::vector<std::string> treatment_of;  // per run, the signature of its treatment
  std::map<std::string, std::map<std::string, Arm>> arms;  // treatment → tuned text → arm
  std::vector<std::string> order;                          // treatments by first run
  std::map<std::string, std::vector<size_t>> members;
  for (size_t i = 0; i < runs.size(); ++i) {
    seeds.push_back(runs[i].loaded.config.train.seed);
    const RunFolder& r = runs[i];
    if (!r.finished || !r.outcome.final_eval) {
      analysis.excluded.push_back(r.name + ": " +
                                  (!r.finished ? format("unfinished ({}/{} steps)", r.outcome.step,
                                                        r.loaded.config.train.steps)
                                               : std::string("no validation loss")));
      continue;
    }
    const std::string signature = joined_values(diffs, i, other);
    if (!arms.count(signature)) order.push_back(signature);
    members[signature].push_back(i);
    std::vector<double> tuned_values;
    const std::string label = arm_label(roles, i, &tuned_values);
    Arm& arm = arms[signature][label];
    arm.label = label;
    arm.tuned_values = tuned_values;
    arm.runs.push_back(i);
  }
  for (const std::string& signature : order) {
    Treatment t{treatment_name(runs, members[signature], varying, signature), {}, 0};
    for (auto& [label, arm] : arms[signature]) {
      finish_arm(arm, runs, seeds);
      t.arms.push_back(arm);
    }
    std::sort(t.arms.begin(), t.arms.end(), [](const Arm& x, const Arm& y) {
      const auto numeric = [](const Arm& arm) {
        return std::none_of(arm.tuned_values.begin(), arm.tuned_values.end(),
                            [](double v) { return std::isnan(v); });
      };
      if (numeric(x) && numeric(y) && x.tuned_values != y.tuned_values) {
        return x.tuned_values < y.tuned_values;
      }
      return x.label < y.label;
    });
    for (size_t k = 0; k < t.arms.size(); ++k) {
      if (t.arms[k].loss.mean < t.arms[t.best].loss.mean) t.best = k;
    }
    for (const Arm& arm : t.arms) {
      const int n = static_cast<int>(arm.runs.size());
      analysis.fewest_seeds = analysis.fewest_seeds == 0 ? n : std::min(analysis.fewest_seeds, n);
    }
    analysis.treatments.push_back(std::move(t));
  }
  compare_treatments(analysis);
  return analysis;
}

RunGroups group_runs(const std::vector<RunFolder>& runs,
                     const std::vector<std::string>& tune_keys) {
  const KeyRoles roles = key_roles(differing_keys(runs), tune_keys);
  std::vector<std::string> varying = roles.tuned_keys;
  varying.push_back(kSeedKey);
  RunGroups groups;
  std::vector<std::string> signatures;  // by treatment
  std::vector<std::vector<size_t>> members;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string signature = joined_values(roles.diffs, i, roles.other);
    const auto at = std::find(signatures.begin(), signatures.end(), signature);
    groups.treatment_of.push_back(static_cast<size_t>(at - signatures.begin()));
    if (at == signatures.end()) {
      signatures.push_back(signature);
      members.emplace_back();
    }
    members[groups.treatment_of.back()].push_back(i);
    groups.arm_of.push_back(arm_label(roles, i));
    groups.seeds.push_back(runs[i].loaded.config.train.seed);
  }
  for (size_t t = 0; t < signatures.size(); ++t) {
    groups.treatments.push_back(treatment_name(runs, members[t], varying, signatures[t]));
  }
  std::vector<int64_t> seeds = groups.seeds;
  std::sort(seeds.begin(), seeds.end());
  seeds.erase(std::unique(seeds.begin(), seeds.end()), seeds.end());
  for (int64_t seed : groups.seeds) {
    groups.seed_of.push_back(
        static_cast<size_t>(std::lower_bound(seeds.begin(), seeds.end(), seed) - seeds.begin()));
  }
  groups.seeds = std::move(seeds);
  return groups;
}

}  // namespace cca::sweep
