// `cca-train report` and the end of `cca-train sweep`: compares runs side by side in
// report.md, a self-contained report.html (plots inlined), report.json (every number at full
// precision, for scripts and tests) and one SVG per plot.
#pragma once

#include <string>
#include <vector>

#include "sweep/run_folder.h"

namespace cca::sweep {

struct ReportFiles {
  std::string markdown;
  std::string html;
  std::string json;
  std::vector<std::string> plots;
};

// The keys a report tunes by default: each treatment is compared at its best learning rate.
inline const std::vector<std::string> kDefaultTuneKeys = {"optim.lr"};

// Writes the report of `runs` (in this order) into `out_dir` (created). Runs that differ only in
// train.seed form an arm (mean, SD, 95% interval of the final validation loss); arms that differ
// only in `tune_keys` form a treatment (a variant: one colour in the plots), compared with the
// others at its best arm (arms.h), and with the first, the baseline, in the summary.
ReportFiles write_report(const std::vector<RunFolder>& runs, const std::string& out_dir,
                         const std::string& title,
                         const std::vector<std::string>& tune_keys = kDefaultTuneKeys);

// Where `cca-train report` writes without --out: the one folder named (a sweep's out_dir or a
// single run), else the parent the run folders share. Throws when there is none.
std::string default_report_dir(const std::vector<std::string>& arguments,
                               const std::vector<std::string>& run_dirs);

}  // namespace cca::sweep
