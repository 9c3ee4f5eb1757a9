// The statistics a report states about seeds: per arm the mean, the sample standard deviation and
// a 95% confidence interval of the mean (Student's t), and for two arms the interval of their
// difference, paired by seed when both arms ran the same seeds, else Welch's.
#pragma once

#include <optional>
#include <vector>

namespace cca::sweep {

// The q-quantile of Student's t distribution with `df` (> 0, not necessarily whole) degrees of
// freedom, 0 < q < 1.
double student_t_quantile(double q, double df);

struct Estimate {
  int n = 0;
  double mean = 0;
  double sd = 0;  // sample standard deviation (n − 1) of the values; 0 when n < 2 or for Welch
  double se = 0;  // standard error of the mean (or of the difference of means)
  double df = 0;  // degrees of freedom of the interval
  // The 95% interval of the mean; absent when n < 2 (no spread to judge it by).
  std::optional<double> low, high;

  // The interval lies wholly on one side of zero (for differences: "a real difference").
  bool excludes_zero() const { return low && high && (*low > 0 || *high < 0); }
};

// Mean, standard deviation and 95% interval of `values` (at least one).
Estimate estimate_mean(const std::vector<double>& values);

// b − a for the same seeds in the same order: the interval of the mean of the n differences.
Estimate paired_difference(const std::vector<double>& a, const std::vector<double>& b);

// mean(b) − mean(a) for independent samples: Welch's interval, with the Welch–Satterthwaite
// degrees of freedom (n = the smaller sample).
Estimate welch_difference(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace cca::sweep
