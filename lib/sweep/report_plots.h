// The plots of a report (report.h): one colour per treatment (a variant: the runs' config less
// the seed and the tuned keys) and one line style per seed, each arm's mean over seeds drawn
// thick over the range of its seeds, the legend beside the plot, units on every axis.
#pragma once

#include <string>
#include <vector>

#include "sweep/arms.h"
#include "sweep/run_folder.h"
#include "sweep/svg_plot.h"

namespace cca::sweep {

struct NamedPlot {
  std::string file;
  LinePlot plot;
};

// Validation loss against tokens (whole run and second half), against training time without
// warm-up (run_metrics.h), smoothed training loss, one curve per named validation set, and mean
// final validation loss against the one tuned key. With tuned keys, the curves show each
// treatment's best arm (as the comparisons do).
std::vector<NamedPlot> report_plots(const std::vector<RunFolder>& runs, const RunGroups& groups,
                                    const SeedAnalysis& seeds);

// The dash pattern of seed number `index`: all dashed, so no seed looks like the solid mean.
const char* seed_dash(size_t index);

// A centred moving average: each value is the mean of up to `half` values on either side, fewer
// near the ends (the same number on both sides, so the curve neither lags nor bends at the edges).
std::vector<double> smooth(const std::vector<double>& values, size_t half);

}  // namespace cca::sweep
