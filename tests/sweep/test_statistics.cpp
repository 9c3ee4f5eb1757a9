// The report's statistics against published t-table values, a density integrated in the test,
// and intervals worked out by hand.
#include <gtest/gtest.h>

#include <cmath>

#include "sweep/statistics.h"
#include "util/error.h"

namespace cca::sweep {
namespace {

TEST(StudentT, QuantilesMatchTheTable) {
  // Two-sided 95% critical values (any printed t table).
  EXPECT_NEAR(student_t_quantile(0.975, 1), 12.7062, 1e-4);
  EXPECT_NEAR(student_t_quantile(0.975, 2), 4.3027, 1e-4);
  EXPECT_NEAR(student_t_quantile(0.975, 4), 2.7764, 1e-4);
  EXPECT_NEAR(student_t_quantile(0.975, 10), 2.2281, 1e-4);
  EXPECT_NEAR(student_t_quantile(0.975, 30), 2.0423, 1e-4);
  EXPECT_NEAR(student_t_quantile(0.95, 5), 2.0150, 1e-4);
  EXPECT_NEAR(student_t_quantile(0.975, 1e7), 1.95996, 1e-4);  // the normal's
  EXPECT_NEAR(student_t_quantile(0.025, 4), -2.7764, 1e-4);
  EXPECT_EQ(student_t_quantile(0.5, 3), 0.0);
  EXPECT_THROW(student_t_quantile(1.0, 3), Error);
  EXPECT_THROW(student_t_quantile(0.9, 0), Error);
}

// ∫_0^t of the t density, by Simpson's rule: independent of the incomplete beta function.
double integrated_cdf_above_half(double t, double df) {
  const double c = std::exp(std::lgamma((df + 1) / 2) - std::lgamma(df / 2)) / std::sqrt(df * M_PI);
  const auto pdf = [&](double x) { return c * std::pow(1 + x * x / df, -(df + 1) / 2); };
  const int n = 20000;
  const double h = t / n;
  double sum = pdf(0) + pdf(t);
  for (int i = 1; i < n; ++i) sum += (i % 2 ? 4 : 2) * pdf(i * h);
  return sum * h / 3;
}

TEST(StudentT, FractionalDegreesOfFreedomInvertTheDensity) {
  for (double df : {1.5, 2.5, 4.0755, 7.3}) {
    const double t = student_t_quantile(0.975, df);
    EXPECT_NEAR(integrated_cdf_above_half(t, df), 0.475, 1e-7) << "df " << df;
  }
  EXPECT_GT(student_t_quantile(0.975, 2.5), student_t_quantile(0.975, 3));
  EXPECT_LT(student_t_quantile(0.975, 2.5), student_t_quantile(0.975, 2));
}

TEST(Estimates, MeanSdAndIntervalByHand) {
  const Estimate e = estimate_mean({1, 2, 3, 4});
  EXPECT_EQ(e.n, 4);
  EXPECT_DOUBLE_EQ(e.mean, 2.5);
  EXPECT_NEAR(e.sd, std::sqrt(5.0 / 3), 1e-12);
  // 2.5 ± t(0.975, 3) · sd / 2, t = 3.18245.
  EXPECT_NEAR(*e.low, 2.5 - 3.182446 * std::sqrt(5.0 / 3) / 2, 1e-5);
  EXPECT_NEAR(*e.high, 2.5 + 3.182446 * std::sqrt(5.0 / 3) / 2, 1e-5);
  EXPECT_TRUE(e.excludes_zero());  // [0.45, 4.55]

  const Estimate one = estimate_mean({3.5});
  EXPECT_DOUBLE_EQ(one.mean, 3.5);
  EXPECT_FALSE(one.low.has_value());
  EXPECT_FALSE(one.excludes_zero());
}

TEST(Estimates, PairedDifferenceUsesThePerSeedDifferences) {
  // Differences 0.5, 0.4, 0.7: mean 0.5333, sd 0.152753, half-width 4.302653 · sd / √3.
  const Estimate d = paired_difference({1, 2, 3}, {1.5, 2.4, 3.7});
  EXPECT_NEAR(d.mean, 1.6 / 3, 1e-12);
  EXPECT_NEAR(*d.low, 1.6 / 3 - 4.302653 * 0.1527525 / std::sqrt(3.0), 1e-5);
  EXPECT_TRUE(d.excludes_zero());
  // The same numbers unpaired: the between-seed spread swamps the shift.
  EXPECT_FALSE(welch_difference({1, 2, 3}, {1.5, 2.4, 3.7}).excludes_zero());
  EXPECT_THROW(paired_difference({1, 2}, {1}), Error);
}

TEST(Estimates, WelchIntervalHasSatterthwaiteDegreesOfFreedom) {
  // a: mean 2, var 1 (n 3); b: mean 5, var 20/3 (n 4). se² = 1/3 + 5/3 = 2,
  // df = 4 / ((1/3)²/2 + (5/3)²/3) = 4.0755.
  const Estimate d = welch_difference({1, 2, 3}, {2, 4, 6, 8});
  EXPECT_DOUBLE_EQ(d.mean, 3);
  EXPECT_NEAR(d.se, std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(d.df, 4.0 / (1.0 / 18 + 25.0 / 27), 1e-9);
  const double half = student_t_quantile(0.975, d.df) * std::sqrt(2.0);
  EXPECT_NEAR(*d.high - *d.low, 2 * half, 1e-9);
  EXPECT_GT(half, 2.7764 * std::sqrt(2.0) - 0.05);  // t(4.08) is a little under t(4)
  EXPECT_LT(half, 2.7764 * std::sqrt(2.0));
  EXPECT_FALSE(d.excludes_zero());                              // 3 ± 3.9
  EXPECT_FALSE(welch_difference({1}, {2, 3}).low.has_value());  // one seed: no interval
}

}  // namespace
}  // namespace cca::sweep
