#include "sweep/statistics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "util/error.h"

namespace cca::sweep {
namespace {

// The continued fraction of the regularised incomplete beta function (modified Lentz), which
// converges quickly for x < (a + 1) / (a + b + 2).
double beta_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  const auto guard = [](double v) { return std::fabs(v) < kTiny ? kTiny : v; };
  double c = 1;
  double d = 1 / guard(1 - (a + b) * x / (a + 1));
  double h = d;
  for (int m = 1; m <= 300; ++m) {
    const double even = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
    d = 1 / guard(1 + even * d);
    c = guard(1 + even / c);
    h *= d * c;
    const double odd = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
    d = 1 / guard(1 + odd * d);
    c = guard(1 + odd / c);
    const double step = d * c;
    h *= step;
    if (std::fabs(step - 1) < 1e-15) break;
  }
  return h;
}

// I_x(a, b).
double regularised_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                                a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * beta_fraction(a, b, x) / a;
  return 1 - front * beta_fraction(b, a, 1 - x) / b;
}

// P(T <= t) for t >= 0.
double student_t_cdf(double t, double df) {
  return 1 - 0.5 * regularised_beta(df / 2, 0.5, df / (df + t * t));
}

double mean_of(const std::vector<double>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double variance_of(const std::vector<double>& v, double mean) {
  if (v.size() < 2) return 0;
  double sum = 0;
  for (double x : v) sum += (x - mean) * (x - mean);
  return sum / static_cast<double>(v.size() - 1);
}

void set_interval(Estimate& e) {
  if (e.df <= 0) return;
  const double half = student_t_quantile(0.975, e.df) * e.se;
  e.low = e.mean - half;
  e.high = e.mean + half;
}

}  // namespace

double student_t_quantile(double q, double df) {
  if (!(q > 0 && q < 1) || !(df > 0)) {
    throw Error("student_t_quantile: needs 0 < q < 1 and df > 0");
  }
  if (q < 0.5) return -student_t_quantile(1 - q, df);
  if (q == 0.5) return 0;
  double high = 1;
  while (student_t_cdf(high, df) < q && high < 1e12) high *= 2;
  double low = 0;
  for (int i = 0; i < 200 && high - low > 1e-12 * high; ++i) {
    const double mid = (low + high) / 2;
    (student_t_cdf(mid, df) < q ? low : high) = mid;
  }
  return (low + high) / 2;
}

Estimate estimate_mean(const std::vector<double>& values) {
  if (values.empty()) throw Error("estimate_mean: no values");
  Estimate e;
  e.n = static_cast<int>(values.size());
  e.mean = mean_of(values);
  e.sd = std::sqrt(variance_of(values, e.mean));
  e.se = e.sd / std::sqrt(static_cast<double>(e.n));
  e.df = e.n - 1;
  set_interval(e);
  return e;
}

Estimate paired_difference(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) throw Error("paired_difference: samples of different sizes");
  std::vector<double> differences(a.size());
  for (size_t i = 0; i < a.size(); ++i) differences[i] = b[i] - a[i];
  return estimate_mean(differences);
}

Estimate welch_difference(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.empty() || b.empty()) throw Error("welch_difference: an empty sample");
  Estimate e;
  e.n = static_cast<int>(std::min(a.size(), b.size()));
  const double ma = mean_of(a), mb = mean_of(b);
  e.mean = mb - ma;
  if (a.size() < 2 || b.size() < 2) return e;
  const double va = variance_of(a, ma) / static_cast<double>(a.size());
  const double vb = variance_of(b, mb) / static_cast<double>(b.size());
  e.se = std::sqrt(va + vb);
  if (va + vb == 0) {
    e.df = static_cast<double>(a.size() + b.size() - 2);
  } else {
    e.df =
        (va + vb) * (va + vb) /
        (va * va / static_cast<double>(a.size() - 1) + vb * vb / static_cast<double>(b.size() - 1));
  }
  set_interval(e);
  return e;
}

}  // namespace cca::sweep
