#pragma once
// Statistics for comparing policies on held-out prompts: summaries, Welch's and the paired
// t-test, percentile-bootstrap confidence intervals, paired win rates with Wilson intervals,
// and the special functions they need (regularized incomplete beta, Student t and normal
// distribution functions). Definitions, exactly as implemented (docs/evaluation.md repeats
// them; tests/test_eval_statistics.cpp checks them against SciPy 1.17.1 on
// tests/fixtures/eval/statistics.json, made by tools/make_eval_fixtures.py):
//
//   summarize          n, mean, sample standard deviation s (divisor n - 1), standard error
//                      s / sqrt(n). Corrected two-pass: mean = sum/n, then the mean and the
//                      sum of squares are corrected by the residual sum (Chan, Golub, LeVeque
//                      1983), so a large common offset costs no precision. n = 1: s and the
//                      standard error are NaN (numpy's ddof=1 result).
//   welch_t_test       t = (mean_a - mean_b) / sqrt(s_a^2/n_a + s_b^2/n_b), degrees of freedom
//                      by Welch-Satterthwaite:
//                        df = (v_a + v_b)^2 / (v_a^2/(n_a - 1) + v_b^2/(n_b - 1)), v = s^2/n;
//                      scipy.stats.ttest_ind(a, b, equal_var=False). n_a, n_b >= 2.
//   paired_t_test      d_i = a_i - b_i, t = mean(d) / (s_d / sqrt(n)), df = n - 1;
//                      scipy.stats.ttest_rel(a, b). The test for two policies scored on the
//                      same prompts: it removes the between-prompt variance.
//   p-values           from the Student t distribution with df degrees of freedom:
//                        two_sided  P(|T| >= |t|) = I_{df/(df+t^2)}(df/2, 1/2)
//                        greater    P(T >= t)  (H1: mean_a > mean_b, or mean(d) > 0)
//                        less       P(T <= t)  (H1: mean_a < mean_b)
//                      Relative error against SciPy at most 1.1e-13 for df <= 1e6 (2e-11
//                      at df = 1e9); p below about 1e-300 underflows to 0.
//   zero variance      when the standard error is 0 (every sample constant; for the paired
//                      test, every difference equal) the t statistic is 0/0 or x/0. Then, by
//                      definition: equal means give t = 0 and p = 1 for every alternative
//                      (no evidence of a difference); different means give t = +inf or -inf,
//                      and p = 0 for the alternatives that side with the sign (two_sided and
//                      greater for +inf), p = 1 otherwise. Welch's df is then NaN (0/0); the
//                      paired df stays n - 1. SciPy returns NaN (equal) or the same +-inf / 0.
//                      One constant sample alone is not degenerate (df = n_other - 1).
//   bootstrap_mean_ci  percentile bootstrap: B resamples of size n drawn with replacement,
//                      the mean of each, and the (1 - level)/2 and (1 + level)/2 quantiles of
//                      the B means with linear interpolation between order statistics
//                      (numpy.quantile's default "linear": position h = (B - 1) q). Index j
//                      of resample r is floor(w * n / 2^32) for the Philox word w at index
//                      r*n + j of Rng(seed, bootstrap_stream): a pure function of the seed,
//                      the same for any thread count. `estimate` is the sample mean.
//   bootstrap_mean_difference_ci
//                      the same for mean(a) - mean(b) of two independent samples, a and b
//                      resampled independently within each replicate (words r*(n_a+n_b)
//                      + j for a, r*(n_a+n_b) + n_a + j for b).
//   bootstrap_paired_mean_difference_ci
//                      bootstrap_mean_ci of the differences a_i - b_i (pairs resampled
//                      together): the interval for two policies on the same prompts.
//   win_rate           paired: (#{a_i > b_i} + #{a_i = b_i} / 2) / n.
//   wilson_interval    Wilson score interval of a proportion p^ = k / n at level L,
//                      z = Phi^{-1}((1 + L)/2):
//                        (p^ + z^2/(2n) +- z sqrt(p^(1-p^)/n + z^2/(4n^2))) / (1 + z^2/n).
//                      For the win rate, k = wins + ties/2 (a tie is half a win).
//
// Inputs are validated (sizes, no NaN or infinity, level in (0, 1)); a bad entry throws
// rlxf::Error naming the function and the index.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numbers>
#include <span>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/core/threading.hpp"

namespace rlxf::eval {

// The alternative hypothesis of a test about mean_a - mean_b (or mean(a - b) when paired).
enum class Alternative { two_sided, greater, less };

inline const char* to_string(Alternative alt) {
  switch (alt) {
    case Alternative::two_sided: return "two-sided";
    case Alternative::greater: return "greater";
    case Alternative::less: return "less";
  }
  return "?";
}

namespace stats_detail {

inline constexpr double nan = std::numeric_limits<double>::quiet_NaN();
inline constexpr double inf = std::numeric_limits<double>::infinity();

// Throws unless every x[i] is finite, naming `func`, the argument and the index.
inline void check_finite(const char* func, const char* what, std::span<const double> x) {
  for (std::size_t i = 0; i < x.size(); ++i)
    if (!std::isfinite(x[i])) fail(func, ": ", what, "[", i, "] = ", x[i], " is not finite");
}

inline void check_level(const char* func, double level) {
  if (!(level > 0.0 && level < 1.0)) fail(func, ": level = ", level, ", expected in (0, 1)");
}

// delta(z) = ln Gamma(z) - [(z - 1/2) ln z - z + ln(2 pi)/2], Stirling's remainder, for
// z >= 10 by its asymptotic series (the first omitted term is below 2e-18 at z = 10).
inline double stirling_remainder(double z) {
  const double r = 1.0 / z, r2 = r * r;
  // Coefficients B_{2k} / (2k (2k - 1)), k = 1..8.
  constexpr std::array<double, 8> c = {1.0 / 12,    -1.0 / 360,      1.0 / 1260,    -1.0 / 1680,
                                       1.0 / 1188,  -691.0 / 360360, 1.0 / 156,     -3617.0 / 122400};
  double s = 0;
  for (std::size_t k = c.size(); k-- > 0;) s = s * r2 + c[k];
  return s * r;
}

inline constexpr double stirling_threshold = 10.0;

// ln[x^a y^b / B(a, b)], with y = 1 - x given separately (both to full relative accuracy),
// without the cancellation of ln Gamma differences for large a or b: for a, b >= 10
//   a ln(x (a+b)/a) + b ln(y (a+b)/b) + ln(ab/(a+b))/2 - ln(2 pi)/2
//     - delta(a) - delta(b) + delta(a+b)
// (Stirling's formula for each Gamma with the leading terms regrouped), for one of them
// small a difference of ln Gamma by Stirling, otherwise std::lgamma.
inline double log_beta_front(double a, double b, double x, double y) {
  // ln x from whichever of x, y is the smaller (log1p keeps the relative accuracy near 1).
  const double lnx = x <= 0.5 ? std::log(x) : std::log1p(-y);
  const double lny = y <= 0.5 ? std::log(y) : std::log1p(-x);
  const double L = stirling_threshold;
  if (a >= L && b >= L) {
    // a ln(x (a+b)/a) = a log1p(u) with u = lambda / a, lambda = x b - y a = x (a+b) - a
    // = b - y (a+b), formed with an fma and the rounding error of a + b from whichever of
    // x, y is the smaller, so that near the mode (u ~ 0) it keeps its relative accuracy;
    // a (ln x + ln(1 + b/a)) would cancel there and cost a * eps.
    const double s = a + b, bv = s - a, s_err = (a - (s - bv)) + (b - bv);
    const double lambda = x <= 0.5 ? std::fma(x, s, -a) + x * s_err : -(std::fma(y, s, -b) + y * s_err);
    const double u = lambda / a, v = -lambda / b;
    const double ta = std::abs(u) < 0.5 ? a * std::log1p(u) : a * (lnx + std::log1p(b / a));
    const double tb = std::abs(v) < 0.5 ? b * std::log1p(v) : b * (lny + std::log1p(a / b));
    return ta + tb + 0.5 * std::log(a / s * b) - 0.5 * std::log(2.0 * std::numbers::pi) -
           stirling_remainder(a) - stirling_remainder(b) + stirling_remainder(s);
  }
  if (a >= L || b >= L) {
    // small parameter p, large q: ln B(p, q) = lnGamma(p) - [lnGamma(p + q) - lnGamma(q)],
    // lnGamma(q + p) - lnGamma(q) = (q + p - 1/2) ln(1 + p/q) + p ln q - p + delta(q+p) - delta(q).
    const double p = a < b ? a : b, q = a < b ? b : a;
    const double ratio = (q + p - 0.5) * std::log1p(p / q) + p * std::log(q) - p +
                         stirling_remainder(q + p) - stirling_remainder(q);
    return a * lnx + b * lny - std::lgamma(p) + ratio;
  }
  return a * lnx + b * lny - (std::lgamma(a) + std::lgamma(b) - std::lgamma(a + b));
}

// The continued fraction of I_x(a, b) / (x^a y^b / (a B(a, b))):
//   1 / (1 + d_1 / (1 + d_2 / (1 + ...))),
//   d_{2m+1} = -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1)),
//   d_{2m}   =  m (b - m) x / ((a + 2m - 1)(a + 2m)),
// evaluated forwards by the modified Lentz method. It converges fast for
// x < (a + 1)/(a + b + 2), in O(sqrt(max(a, b))) terms.
// In long double, with x formed as 1 - y when y = 1 - x is the smaller: near x = 1 with a
// large the fraction depends on a (1 - x), so x rounded to double would cost a * 1.1e-16
// relative (5e-8 at a = 5e8), and the steps 1 + d_j D_{j-1} cancel to O(1/a). The 64-bit
// significand of x86's long double cuts both 2048 times. (Where long double is double, as on
// MSVC, the double figures apply.)
inline double beta_continued_fraction(double a_in, double b_in, double x_in, double y_in) {
  using R = long double;
  const R a = a_in, b = b_in, x = y_in < 0.5 ? 1 - static_cast<R>(y_in) : static_cast<R>(x_in);
  constexpr R tiny = 1e-300L;
  constexpr R tol = 3 * std::numeric_limits<R>::epsilon();  // about one ulp either side of 1
  const auto fix = [](R v) { return std::abs(v) < tiny ? tiny : v; };
  // D_1 = 1 / (1 + d_1), C_1 = 1 (the leading 1 / ... of the fraction), h = C_1 D_1.
  R c = 1;
  R d = 1 / fix(1 - (a + b) * x / (a + 1));
  R h = d;
  const R max_terms = 1000 + 50 * std::sqrt(std::max(a, b));
  for (R m = 1; m <= max_terms; m += 1) {
    const R m2 = 2 * m;
    const R even = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 / fix(1 + even * d);
    c = fix(1 + even / c);
    h *= d * c;
    const R odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 / fix(1 + odd * d);
    c = fix(1 + odd / c);
    const R delta = d * c;
    h *= delta;
    if (std::abs(delta - 1) <= tol) return static_cast<double>(h);
  }
  fail("regularized_incomplete_beta: continued fraction for a = ", a_in, ", b = ", b_in, ", x = ", x_in,
       " did not converge");
}

// {I_x(a, b), 1 - I_x(a, b)} with y = 1 - x supplied by the caller (so that neither side
// loses relative accuracy to a rounded 1 - x). Each value is computed directly on the side
// where the continued fraction converges and as a complement on the other.
struct BetaPair {
  double lower;  // I_x(a, b)
  double upper;  // 1 - I_x(a, b) = I_y(b, a)
};
inline BetaPair incomplete_beta_pair(double a, double b, double x, double y) {
  if (x <= 0) return {0.0, 1.0};
  if (y <= 0) return {1.0, 0.0};
  if (x < (a + 1.0) / (a + b + 2.0)) {
    const double v = std::exp(log_beta_front(a, b, x, y)) * beta_continued_fraction(a, b, x, y) / a;
    return {v, 1.0 - v};
  }
  const double v = std::exp(log_beta_front(a, b, x, y)) * beta_continued_fraction(b, a, y, x) / b;
  return {1.0 - v, v};
}

// P(T >= t) for t >= 0 and finite df > 0: I_{df/(df+t^2)}(df/2, 1/2) / 2, with x and
// y = t^2/(df+t^2) formed from whichever of t^2/df and df/t^2 is at most 1.
inline double student_t_upper_tail_nonneg(double t, double df) {
  double x, y;
  if (t * t < df) {
    const double r = (t / std::sqrt(df)) * (t / std::sqrt(df));
    x = 1.0 / (1.0 + r);
    y = r / (1.0 + r);
  } else {
    const double s = (std::sqrt(df) / t) * (std::sqrt(df) / t);
    x = s / (1.0 + s);
    y = 1.0 / (1.0 + s);
  }
  return 0.5 * incomplete_beta_pair(0.5 * df, 0.5, x, y).lower;
}

// Sum of x over n indices drawn with replacement: index j uses word first + j of `rng`, a
// Philox block (4 words) at a time.
inline double resampled_sum(const Rng& rng, std::uint64_t first, std::span<const double> x) {
  const std::uint64_t n = x.size(), end = first + n;
  double s = 0;
  for (std::uint64_t i = first; i < end;) {
    const auto blk = rng.block(i / 4);
    for (std::uint64_t k = i % 4; k < 4 && i < end; ++k, ++i)
      s += x[static_cast<std::size_t>((std::uint64_t{blk[k]} * n) >> 32)];
  }
  return s;
}

// The q-quantile of sorted v, linear interpolation at h = (size - 1) q (numpy's "linear").
inline double sorted_quantile(const std::vector<double>& v, double q) {
  const double h = static_cast<double>(v.size() - 1) * q;
  const auto i = static_cast<std::size_t>(std::floor(h));
  if (i + 1 >= v.size()) return v.back();
  const double frac = h - static_cast<double>(i);
  return v[i] + frac * (v[i + 1] - v[i]);
}

}  // namespace stats_detail

// ---------------------------------------------------------------------------------------
// Special functions
// ---------------------------------------------------------------------------------------

// I_x(a, b) = B(x; a, b) / B(a, b), the regularized incomplete beta function, for a, b > 0
// and x in [0, 1]. Continued fraction (modified Lentz, in long double) on the side of the
// mean where it converges fast, the other side as 1 - I_{1-x}(b, a); a Stirling-based
// prefactor that stays accurate for large a and b. Relative error below 1e-13 on closed
// forms and exact rational sums; against SciPy's betainc within 1e-13 plus the problem's own
// conditioning (x I'(x) / I, up to ~1e3 near the mode of a = 1e5, b = 2e5). Cost O(sqrt(max(a, b))).
inline double regularized_incomplete_beta(double a, double b, double x) {
  RLXF_REQUIRE(a > 0 && b > 0 && std::isfinite(a) && std::isfinite(b), "a = ", a, ", b = ", b,
               ", expected finite and positive");
  RLXF_REQUIRE(x >= 0 && x <= 1, "x = ", x, ", expected in [0, 1]");
  return stats_detail::incomplete_beta_pair(a, b, x, 1.0 - x).lower;
}

// Phi(z), the standard normal CDF, and its upper tail 1 - Phi(z) (accurate in both tails).
inline double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::numbers::sqrt2); }
inline double normal_sf(double z) { return 0.5 * std::erfc(z / std::numbers::sqrt2); }

// Phi^{-1}(p) for p in (0, 1): a rational first guess (Abramowitz and Stegun 26.2.23,
// error < 4.5e-4) refined by Halley steps on the lower tail min(p, 1 - p) using erfc, to
// about 1e-15 relative. normal_quantile(0.975) = 1.959963984540054.
inline double normal_quantile(double p) {
  RLXF_REQUIRE(p > 0 && p < 1, "p = ", p, ", expected in (0, 1)");
  if (p == 0.5) return 0.0;
  const double tail = std::min(p, 1.0 - p);
  const double t = std::sqrt(-2.0 * std::log(tail));
  double x = -(t - (2.515517 + t * (0.802853 + t * 0.010328)) /
                       (1.0 + t * (1.432788 + t * (0.189269 + t * 0.001308))));
  for (int it = 0; it < 8; ++it) {
    const double density = std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
    const double u = (normal_cdf(x) - tail) / density;
    const double step = u / (1.0 + 0.5 * x * u);
    x -= step;
    if (std::abs(step) <= 1e-16 * std::abs(x)) break;
  }
  return p < 0.5 ? x : -x;
}

// P(T > t) for T ~ Student t with df > 0 degrees of freedom (any real df; df = +infinity
// gives the normal). Accurate in the far tail: the survival function is computed directly,
// never as 1 - cdf. NaN for NaN t.
inline double student_t_sf(double t, double df) {
  RLXF_REQUIRE(df > 0, "df = ", df, ", expected positive");
  if (std::isnan(t)) return stats_detail::nan;
  if (std::isinf(df)) return normal_sf(t);
  if (t == 0) return 0.5;
  if (std::isinf(t)) return t > 0 ? 0.0 : 1.0;
  const double tail = stats_detail::student_t_upper_tail_nonneg(std::abs(t), df);
  return t > 0 ? tail : 1.0 - tail;
}

// P(T <= t) for T ~ Student t with df > 0 degrees of freedom.
inline double student_t_cdf(double t, double df) { return student_t_sf(-t, df); }

// The p-value of statistic t under Student t(df) for `alt` (two_sided: P(|T| >= |t|)).
inline double student_t_p_value(double t, double df, Alternative alt) {
  switch (alt) {
    case Alternative::two_sided: {
      if (std::isnan(t)) return stats_detail::nan;
      // 2 P(T > |t|), computed without the complement so small p keep their digits.
      return std::min(1.0, 2.0 * student_t_sf(std::abs(t), df));
    }
    case Alternative::greater: return student_t_sf(t, df);
    case Alternative::less: return student_t_cdf(t, df);
  }
  return stats_detail::nan;
}

// ---------------------------------------------------------------------------------------
// Summaries and t-tests
// ---------------------------------------------------------------------------------------

struct Summary {
  std::size_t n = 0;
  double mean = 0;
  double std_dev = 0;    // sample standard deviation (divisor n - 1); NaN for n = 1
  double std_error = 0;  // std_dev / sqrt(n); NaN for n = 1
};

// n, mean, sample standard deviation and standard error of the mean of x (n >= 1, finite).
inline Summary summarize(std::span<const double> x) {
  RLXF_REQUIRE(!x.empty(), "no values: the mean is undefined for n = 0");
  stats_detail::check_finite("summarize", "x", x);
  const auto nd = static_cast<double>(x.size());
  double sum = 0;
  for (double v : x) sum += v;
  double mean = sum / nd;
  double ss = 0, resid = 0;
  for (double v : x) {
    const double d = v - mean;
    ss += d * d;
    resid += d;
  }
  mean += resid / nd;
  Summary s;
  s.n = x.size();
  s.mean = mean;
  if (x.size() < 2) {
    s.std_dev = s.std_error = stats_detail::nan;
    return s;
  }
  const double var = std::max(0.0, (ss - resid * resid / nd) / (nd - 1.0));
  s.std_dev = std::sqrt(var);
  s.std_error = s.std_dev / std::sqrt(nd);
  return s;
}

// The result of a t-test (Welch's or paired; see the header comment for the definitions).
struct TTest {
  double statistic = 0;        // t
  double df = 0;               // degrees of freedom (NaN for Welch when both samples are constant)
  double p_value = 1;
  double mean_difference = 0;  // mean(a) - mean(b); paired: mean(a - b) (the same number)
  double std_error = 0;        // the denominator of t
  Alternative alternative = Alternative::two_sided;
};
using WelchTest = TTest;

namespace stats_detail {
// t = diff / se with the zero-variance convention of the header comment.
inline TTest finish_t_test(double diff, double se, double df, Alternative alt) {
  TTest r;
  r.mean_difference = diff;
  r.std_error = se;
  r.df = df;
  r.alternative = alt;
  if (se > 0) {
    r.statistic = diff / se;
    r.p_value = student_t_p_value(r.statistic, df, alt);
    return r;
  }
  if (diff == 0) {
    r.statistic = 0;
    r.p_value = 1;
    return r;
  }
  r.statistic = diff > 0 ? inf : -inf;
  const bool sides_with = alt == Alternative::two_sided || (alt == Alternative::greater) == (diff > 0);
  r.p_value = sides_with ? 0.0 : 1.0;
  return r;
}
}  // namespace stats_detail

// Welch's unequal-variance t-test of mean(a) = mean(b) (scipy.stats.ttest_ind(a, b,
// equal_var=False, alternative=...)). Both samples need at least 2 values.
inline TTest welch_t_test(std::span<const double> a, std::span<const double> b,
                          Alternative alt = Alternative::two_sided) {
  RLXF_REQUIRE(a.size() >= 2 && b.size() >= 2, "sizes ", a.size(), " and ", b.size(),
               ": each sample needs at least 2 values");
  stats_detail::check_finite("welch_t_test", "a", a);
  stats_detail::check_finite("welch_t_test", "b", b);
  const Summary sa = summarize(a), sb = summarize(b);
  const double va = sa.std_error * sa.std_error, vb = sb.std_error * sb.std_error;
  const double w = va + vb;
  double df = stats_detail::nan;
  if (w > 0) {
    // df = w^2 / (va^2/(na-1) + vb^2/(nb-1)), scaled by w so that tiny variances do not underflow.
    const double fa = va / w, fb = vb / w;
    df = 1.0 / (fa * fa / static_cast<double>(sa.n - 1) + fb * fb / static_cast<double>(sb.n - 1));
  }
  return stats_detail::finish_t_test(sa.mean - sb.mean, std::sqrt(w), df, alt);
}

// The paired t-test of mean(a - b) = 0 (scipy.stats.ttest_rel(a, b, alternative=...)): for
// two policies scored on the same prompts, a[i] and b[i] on prompt i. n >= 2.
inline TTest paired_t_test(std::span<const double> a, std::span<const double> b,
                           Alternative alt = Alternative::two_sided) {
  RLXF_REQUIRE(a.size() == b.size(), "a has ", a.size(), " values but b has ", b.size());
  RLXF_REQUIRE(a.size() >= 2, "n = ", a.size(), ", the paired test needs at least 2 pairs");
  stats_detail::check_finite("paired_t_test", "a", a);
  stats_detail::check_finite("paired_t_test", "b", b);
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  stats_detail::check_finite("paired_t_test", "a - b", d);
  const Summary s = summarize(d);
  return stats_detail::finish_t_test(s.mean, s.std_error, static_cast<double>(s.n - 1), alt);
}

// ---------------------------------------------------------------------------------------
// Bootstrap
// ---------------------------------------------------------------------------------------

struct ConfidenceInterval {
  double estimate = 0;  // the point estimate (the sample statistic, not the bootstrap mean)
  double lower = 0;
  double upper = 0;
  double level = 0.95;
};

// The Rng stream of the bootstrap functions ("boot"), so that a seed shared with other
// uses of Rng draws different numbers here.
inline constexpr std::uint64_t bootstrap_stream = 0x626f6f74;

namespace stats_detail {
inline void check_bootstrap_args(const char* func, double level, std::size_t resamples) {
  check_level(func, level);
  if (resamples < 2) fail(func, ": resamples = ", resamples, ", expected at least 2");
}
inline void check_resample_size(const char* func, const char* what, std::size_t n) {
  if (n == 0) fail(func, ": ", what, " is empty");
  if (n > std::uint64_t{0xFFFFFFFFu}) fail(func, ": ", what, " has ", n, " values, at most 2^32 - 1 supported");
}
inline ConfidenceInterval percentile_interval(std::vector<double>& stats, double estimate, double level) {
  std::sort(stats.begin(), stats.end());
  const double alpha = 1.0 - level;
  return {estimate, sorted_quantile(stats, 0.5 * alpha), sorted_quantile(stats, 1.0 - 0.5 * alpha), level};
}
}  // namespace stats_detail

// Percentile-bootstrap confidence interval for the mean of x (see the header comment).
// Deterministic in `seed`; O(resamples * n).
inline ConfidenceInterval bootstrap_mean_ci(std::span<const double> x, double level = 0.95,
                                            std::size_t resamples = 10000, std::uint64_t seed = 0) {
  stats_detail::check_bootstrap_args("bootstrap_mean_ci", level, resamples);
  stats_detail::check_resample_size("bootstrap_mean_ci", "x", x.size());
  stats_detail::check_finite("bootstrap_mean_ci", "x", x);
  const Rng rng(seed, bootstrap_stream);
  const std::uint64_t n = x.size();
  const auto nd = static_cast<double>(n);
  std::vector<double> means(resamples);
  parallel_for(
      resamples,
      [&](std::size_t r) { means[r] = stats_detail::resampled_sum(rng, r * n, x) / nd; },
      min_parallel_tasks(x.size()));
  return stats_detail::percentile_interval(means, summarize(x).mean, level);
}

// Percentile-bootstrap confidence interval for mean(a) - mean(b), a and b independent
// samples, each resampled within every replicate.
inline ConfidenceInterval bootstrap_mean_difference_ci(std::span<const double> a, std::span<const double> b,
                                                       double level = 0.95, std::size_t resamples = 10000,
                                                       std::uint64_t seed = 0) {
  constexpr const char* func = "bootstrap_mean_difference_ci";
  stats_detail::check_bootstrap_args(func, level, resamples);
  stats_detail::check_resample_size(func, "a", a.size());
  stats_detail::check_resample_size(func, "b", b.size());
  stats_detail::check_finite(func, "a", a);
  stats_detail::check_finite(func, "b", b);
  const Rng rng(seed, bootstrap_stream);
  const std::uint64_t na = a.size(), nb = b.size();
  std::vector<double> diffs(resamples);
  parallel_for(
      resamples,
      [&](std::size_t r) {
        const std::uint64_t base = r * (na + nb);
        diffs[r] = stats_detail::resampled_sum(rng, base, a) / static_cast<double>(na) -
                   stats_detail::resampled_sum(rng, base + na, b) / static_cast<double>(nb);
      },
      min_parallel_tasks(a.size() + b.size()));
  return stats_detail::percentile_interval(diffs, summarize(a).mean - summarize(b).mean, level);
}

// Percentile-bootstrap interval for mean(a - b) over pairs (a[i], b[i]), e.g. two policies
// on the same prompts: bootstrap_mean_ci of the differences.
inline ConfidenceInterval bootstrap_paired_mean_difference_ci(std::span<const double> a,
                                                              std::span<const double> b, double level = 0.95,
                                                              std::size_t resamples = 10000,
                                                              std::uint64_t seed = 0) {
  RLXF_REQUIRE(a.size() == b.size(), "a has ", a.size(), " values but b has ", b.size());
  stats_detail::check_finite("bootstrap_paired_mean_difference_ci", "a", a);
  stats_detail::check_finite("bootstrap_paired_mean_difference_ci", "b", b);
  std::vector<double> d(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return bootstrap_mean_ci(d, level, resamples, seed);
}

// ---------------------------------------------------------------------------------------
// Win rate
// ---------------------------------------------------------------------------------------

// Wilson score interval for a proportion of `successes` out of n trials (successes may be
// fractional: a tie as half a success). `estimate` is successes / n.
inline ConfidenceInterval wilson_interval(double successes, std::size_t n, double level = 0.95) {
  stats_detail::check_level("wilson_interval", level);
  RLXF_REQUIRE(n > 0, "n = 0 trials");
  const auto nd = static_cast<double>(n);
  RLXF_REQUIRE(successes >= 0 && successes <= nd, "successes = ", successes, ", expected in [0, ", n, "]");
  const double p = successes / nd;
  const double z = normal_quantile(0.5 * (1.0 + level));
  const double z2n = z * z / nd;
  const double center = (p + 0.5 * z2n) / (1.0 + z2n);
  const double half = z / (1.0 + z2n) * std::sqrt(p * (1.0 - p) / nd + 0.25 * z2n / nd);
  return {p, std::max(0.0, center - half), std::min(1.0, center + half), level};
}

struct WinRate {
  std::size_t n = 0;
  std::size_t wins = 0;    // a[i] > b[i]
  std::size_t ties = 0;    // a[i] == b[i]
  std::size_t losses = 0;  // a[i] < b[i]
  double rate = 0;         // (wins + ties/2) / n
  ConfidenceInterval ci;   // Wilson interval of rate (estimate == rate)
};

// Paired win rate of a over b with its Wilson interval at `level` (ties count 1/2).
inline WinRate win_rate_interval(std::span<const double> a, std::span<const double> b, double level = 0.95) {
  RLXF_REQUIRE(a.size() == b.size(), "a has ", a.size(), " values but b has ", b.size());
  RLXF_REQUIRE(!a.empty(), "no pairs: the win rate is undefined for n = 0");
  stats_detail::check_finite("win_rate", "a", a);
  stats_detail::check_finite("win_rate", "b", b);
  WinRate w;
  w.n = a.size();
  for (std::size_t i = 0; i < a.size(); ++i) ++(a[i] > b[i] ? w.wins : a[i] < b[i] ? w.losses : w.ties);
  const double k = static_cast<double>(w.wins) + 0.5 * static_cast<double>(w.ties);
  w.ci = wilson_interval(k, w.n, level);
  w.rate = w.ci.estimate;
  return w;
}

// Paired win rate of a over b: (#{a_i > b_i} + #{a_i = b_i}/2) / n.
inline double win_rate(std::span<const double> a, std::span<const double> b) {
  return win_rate_interval(a, b).rate;
}

}  // namespace rlxf::eval
