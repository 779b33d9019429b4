// rlxf::eval statistics: the incomplete beta function against closed forms, exact rational
// sums and SciPy's betainc; the Student t and normal distributions against closed forms and
// SciPy; Welch's and the paired t-test against scipy.stats.ttest_ind(equal_var=False) /
// ttest_rel on tests/fixtures/eval/statistics.json (tools/make_eval_fixtures.py, SciPy
// 1.17.1); the zero-variance conventions; bootstrap determinism, coverage and width; win
// rates and Wilson intervals.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "error_of.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/core/threading.hpp"
#include "rlxf/eval/statistics.hpp"

using namespace rlxf::eval;
using rlxf::test::error_of;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const nlohmann::json& fixture() {
  static const nlohmann::json j = [] {
    const fs::path path = fs::path(RLXF_TEST_FIXTURES) / "eval" / "statistics.json";
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "missing fixture ", path.string());
    return nlohmann::json::parse(in);
  }();
  return j;
}

// |got - want| / |want|, or the absolute error when want = 0.
double rel_err(double got, double want) {
  if (want == 0) return std::abs(got);
  return std::abs(got - want) / std::abs(want);
}

Alternative parse_alternative(const std::string& s) {
  if (s == "greater") return Alternative::greater;
  if (s == "less") return Alternative::less;
  return Alternative::two_sided;
}

std::vector<double> normal_sample(std::size_t n, double mean, double sd, std::uint64_t seed) {
  rlxf::Rng rng(seed, 11);
  std::vector<double> x(n);
  for (auto& v : x) v = mean + sd * rng.next_normal();
  return x;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Incomplete beta
// ---------------------------------------------------------------------------------------

TEST_CASE("regularized_incomplete_beta: closed forms") {
  double worst = 0;
  for (double x : {1e-300, 1e-12, 1e-3, 0.1, 0.25, 0.5, 0.7, 0.9, 0.999, 1.0 - 1e-12}) {
    // I_x(1, 1) = x
    worst = std::max(worst, rel_err(regularized_incomplete_beta(1, 1, x), x));
    // I_x(a, 1) = x^a
    for (double a : {0.3, 2.0, 7.5, 40.0, 1000.0})
      worst = std::max(worst, rel_err(regularized_incomplete_beta(a, 1, x), std::pow(x, a)));
    // I_x(1, b) = 1 - (1 - x)^b, formed as -expm1(b log1p(-x)) to keep its digits
    for (double b : {0.3, 2.0, 7.5, 40.0})
      worst = std::max(worst, rel_err(regularized_incomplete_beta(1, b, x), -std::expm1(b * std::log1p(-x))));
    // I_x(1/2, 1/2) = (2 / pi) asin(sqrt(x)) = 1 - (2 / pi) asin(sqrt(1 - x)) (the second
    // form for x > 1/2, where asin near 1 would lose the digits of the reference)
    const double arcsine = x <= 0.5 ? 2.0 / std::numbers::pi * std::asin(std::sqrt(x))
                                    : 1.0 - 2.0 / std::numbers::pi * std::asin(std::sqrt(1.0 - x));
    worst = std::max(worst, rel_err(regularized_incomplete_beta(0.5, 0.5, x), arcsine));
  }
  MESSAGE("closed forms: max relative error ", worst);
  CHECK(worst < 1e-13);

  // Symmetry I_x(a, b) = 1 - I_{1-x}(b, a), at dyadic x so that 1 - x is exact.
  double sym = 0;
  for (double x : {0.0625, 0.25, 0.375, 0.5, 0.8125, 0.96875})
    for (auto [a, b] : {std::pair{0.5, 3.0}, {2.0, 2.0}, {7.0, 1.5}, {30.0, 45.0}, {300.0, 200.0}, {0.1, 0.2}})
      sym = std::max(sym, std::abs(regularized_incomplete_beta(a, b, x) -
                                   (1.0 - regularized_incomplete_beta(b, a, 1.0 - x))));
  MESSAGE("symmetry: max absolute error ", sym);
  CHECK(sym < 1e-14);

  CHECK(regularized_incomplete_beta(2.5, 3.5, 0.0) == 0.0);
  CHECK(regularized_incomplete_beta(2.5, 3.5, 1.0) == 1.0);
  CHECK(contains(error_of([] { regularized_incomplete_beta(0, 1, 0.5); }), "expected finite and positive"));
  CHECK(contains(error_of([] { regularized_incomplete_beta(1, 1, 1.5); }), "expected in [0, 1]"));
  CHECK(contains(error_of([] { regularized_incomplete_beta(1, 1, std::nan("")); }), "expected in [0, 1]"));
}

// Integer (a, b): the exact binomial sum in rational arithmetic, and SciPy's betainc /
// betaincc for real (a, b) from 0.1 to 5e5. Both sides (I and 1 - I) are compared, each
// computed without cancellation where it is small.
TEST_CASE("regularized_incomplete_beta: exact sums and SciPy betainc") {
  double worst_exact = 0, worst_scipy = 0;
  for (const auto& c : fixture()["betainc_exact"]) {
    const double a = c["a"], b = c["b"], x = c["x"];
    const auto p = rlxf::eval::stats_detail::incomplete_beta_pair(a, b, x, 1.0 - x);
    worst_exact = std::max({worst_exact, rel_err(p.lower, c["value"]), rel_err(p.upper, c["complement"])});
  }
  for (const auto& c : fixture()["betainc"]) {
    const double a = c["a"], b = c["b"], x = c["x"], value = c["value"], complement = c["complement"];
    const auto p = rlxf::eval::stats_detail::incomplete_beta_pair(a, b, x, 1.0 - x);
    const double e = std::max(rel_err(p.lower, value), rel_err(p.upper, complement));
    // The problem's own condition number: a relative change eps of x moves I by
    // x I'(x) eps = x^a (1-x)^(b-1) / B(a, b) eps; allow 16 eps of that on top of 1e-13.
    const double cond = std::exp(rlxf::eval::stats_detail::log_beta_front(a, b, x, 1.0 - x)) /
                        ((1.0 - x) * std::min(value, complement));
    const double budget = 1e-13 + 16 * 2.2e-16 * cond;
    worst_scipy = std::max(worst_scipy, e / budget);
    CHECK_MESSAGE(e <= budget, "a=", a, " b=", b, " x=", x, " rel err ", e, " cond ", cond);
  }
  MESSAGE("exact sums: max relative error ", worst_exact, "; SciPy: max error / budget ", worst_scipy);
  CHECK(worst_exact < 1e-13);
}

// ---------------------------------------------------------------------------------------
// Distributions
// ---------------------------------------------------------------------------------------

TEST_CASE("student_t: closed forms for df = 1 and 2, symmetry, limits") {
  double worst = 0;
  for (double t : {-50.0, -3.0, -1.0, -0.2, 0.0, 1e-8, 0.2, 1.0, 3.0, 50.0, 1e6}) {
    // df = 1 (Cauchy): upper tail atan2(1, t) / pi, accurate for large t.
    worst = std::max(worst, rel_err(student_t_sf(t, 1), std::atan2(1.0, t) / std::numbers::pi));
    // df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2)); upper tail (1 - t/sqrt(2+t^2)) / 2
    // = 1 / (sqrt(2 + t^2) (sqrt(2 + t^2) + t)) for t >= 0.
    const double r = std::sqrt(2.0 + t * t);
    const double sf2 = t >= 0 ? 1.0 / (r * (r + t)) : 0.5 - 0.5 * t / r;
    worst = std::max(worst, rel_err(student_t_sf(t, 2), sf2));
    for (double df : {0.7, 3.0, 12.5, 1e4})
      worst = std::max(worst, std::abs(student_t_cdf(t, df) + student_t_cdf(-t, df) - 1.0));
  }
  MESSAGE("closed forms: max relative error ", worst);
  CHECK(worst < 1e-14);
  CHECK(student_t_cdf(0.0, 5) == 0.5);
  CHECK(student_t_sf(INFINITY, 5) == 0.0);
  CHECK(student_t_sf(-INFINITY, 5) == 1.0);
  CHECK(std::isnan(student_t_sf(std::nan(""), 5)));
  CHECK(student_t_sf(1.5, INFINITY) == doctest::Approx(normal_sf(1.5)).epsilon(1e-15));
  // Large df approaches the normal: |F_t - Phi| = O(1/df).
  CHECK(std::abs(student_t_cdf(1.5, 1e9) - normal_cdf(1.5)) < 1e-9);
  CHECK(contains(error_of([] { student_t_sf(1.0, 0.0); }), "expected positive"));
}

// Both tails, relative: 1e-12 up to df = 1e6. At df = 1e9 the function of x = df/(df+t^2)
// is so steep (relative sensitivity df/2 * 2^-64 in the long-double continued fraction)
// that 1e-10 is the budget (measured: 2e-11).
TEST_CASE("student_t: against scipy.stats.t.cdf and t.sf") {
  double worst = 0;
  for (const auto& c : fixture()["t_dist"]) {
    const double t = c["t"], df = c["df"];
    const double e = std::max(rel_err(student_t_cdf(t, df), c["cdf"]), rel_err(student_t_sf(t, df), c["sf"]));
    CHECK_MESSAGE(e < (df <= 1e6 ? 1e-12 : 1e-10), "t=", t, " df=", df, " rel err ", e);
    if (df <= 1e6) worst = std::max(worst, e);
  }
  MESSAGE("t distribution: max relative error ", worst, " for df <= 1e6 over ", fixture()["t_dist"].size(), " points");
}

TEST_CASE("normal_quantile: against scipy.stats.norm.ppf") {
  double worst = 0;
  for (const auto& c : fixture()["normal_ppf"]) worst = std::max(worst, rel_err(normal_quantile(c["p"]), c["z"]));
  MESSAGE("normal quantile: max relative error ", worst);
  CHECK(worst < 1e-13);
  CHECK(normal_quantile(0.5) == 0.0);
  CHECK(normal_quantile(0.975) == doctest::Approx(1.959963984540054).epsilon(1e-15));
  CHECK(contains(error_of([] { normal_quantile(1.0); }), "expected in (0, 1)"));
}

// ---------------------------------------------------------------------------------------
// Summaries and t-tests
// ---------------------------------------------------------------------------------------

TEST_CASE("summarize: by hand, one value, a large offset") {
  const std::vector<double> x = {2, 4, 4, 4, 5, 5, 7, 9};  // mean 5, sum of squares 32
  const Summary s = summarize(x);
  CHECK(s.n == 8);
  CHECK(s.mean == 5.0);
  CHECK(s.std_dev == doctest::Approx(std::sqrt(32.0 / 7)).epsilon(1e-15));
  CHECK(s.std_error == doctest::Approx(std::sqrt(32.0 / 7 / 8)).epsilon(1e-15));

  const std::vector<double> one = {3.5};
  const Summary s1 = summarize(one);
  CHECK(s1.mean == 3.5);
  CHECK(std::isnan(s1.std_dev));
  CHECK(std::isnan(s1.std_error));

  // 1e9 + the values above: the naive sum-of-squares formula would lose every digit.
  std::vector<double> shifted(x);
  for (auto& v : shifted) v += 1e9;
  const Summary s2 = summarize(shifted);
  CHECK(s2.mean == 1e9 + 5.0);
  CHECK(s2.std_dev == doctest::Approx(std::sqrt(32.0 / 7)).epsilon(1e-12));

  CHECK(contains(error_of([] { summarize(std::vector<double>{}); }), "n = 0"));
  CHECK(contains(error_of([] { summarize(std::vector<double>{1.0, std::nan("")}); }), "x[1] = nan is not finite"));
}

TEST_CASE("welch_t_test and paired_t_test: against SciPy ttest_ind(equal_var=False) and ttest_rel") {
  double worst_t = 0, worst_df = 0, worst_p = 0;
  std::size_t count = 0;
  for (const char* kind : {"welch", "paired"}) {
    const bool paired = std::string(kind) == "paired";
    for (const auto& c : fixture()[kind]) {
      const std::vector<double> a = c["a"], b = c["b"];
      for (const auto& [alt_name, want] : c["results"].items()) {
        const Alternative alt = parse_alternative(alt_name);
        const TTest r = paired ? paired_t_test(a, b, alt) : welch_t_test(a, b, alt);
        const std::string where = std::string(kind) + " " + c["name"].get<std::string>() + " " + alt_name;
        const double et = rel_err(r.statistic, want["statistic"]);
        const double edf = rel_err(r.df, want["df"]);
        const double ep = rel_err(r.p_value, want["pvalue"]);
        // t and df: agreement to 1e-11 relative (both sides sum the data in a different
        // order; "p~1" has t ~ 6e-4, a difference of means ~1e-4 of the means, so its
        // relative error is amplified about 1e3 times over the summation error).
        CHECK_MESSAGE(et < 1e-11, where, ": t ", r.statistic, " vs ", want["statistic"].get<double>());
        CHECK_MESSAGE(edf < 1e-11, where, ": df ", r.df, " vs ", want["df"].get<double>());
        // p: 1e-10 relative; p is a smooth function of t (|d ln p / d ln t| < 100 here), so
        // t's 1e-12-level differences allow no more.
        CHECK_MESSAGE(ep < 1e-10, where, ": p ", r.p_value, " vs ", want["pvalue"].get<double>());
        CHECK(r.alternative == alt);
        worst_t = std::max(worst_t, et);
        worst_df = std::max(worst_df, edf);
        worst_p = std::max(worst_p, ep);
        ++count;
      }
    }
  }
  MESSAGE(count, " tests: max relative error t ", worst_t, ", df ", worst_df, ", p ", worst_p);
}

TEST_CASE("t-tests: zero variance, degenerate conventions, errors") {
  const std::vector<double> c1 = {1, 1, 1}, c1b = {1, 1, 1, 1}, c2 = {2, 2, 2, 2};
  // Both constant, equal means: t = 0, p = 1 for every alternative, df NaN.
  for (auto alt : {Alternative::two_sided, Alternative::greater, Alternative::less}) {
    const TTest r = welch_t_test(c1, c1b, alt);
    CHECK(r.statistic == 0.0);
    CHECK(r.p_value == 1.0);
    CHECK(std::isnan(r.df));
  }
  // Both constant, different means: t = -inf (1 < 2); p = 0 two-sided and for "less".
  CHECK(welch_t_test(c1, c2).statistic == -INFINITY);
  CHECK(welch_t_test(c1, c2).p_value == 0.0);
  CHECK(welch_t_test(c1, c2, Alternative::less).p_value == 0.0);
  CHECK(welch_t_test(c1, c2, Alternative::greater).p_value == 1.0);
  CHECK(welch_t_test(c2, c1, Alternative::greater).p_value == 0.0);
  // One constant sample: an ordinary test with df = n_other - 1.
  const std::vector<double> v = {0.5, 1.5, 1.0, 2.0};
  CHECK(welch_t_test(c2, v).df == doctest::Approx(3.0).epsilon(1e-15));

  // Paired: all differences equal.
  const std::vector<double> a = {1, 2, 3}, b = {0, 1, 2};
  const TTest p = paired_t_test(a, b, Alternative::greater);
  CHECK(p.statistic == INFINITY);
  CHECK(p.p_value == 0.0);
  CHECK(p.df == 2.0);
  CHECK(paired_t_test(a, a).p_value == 1.0);
  CHECK(paired_t_test(a, a).statistic == 0.0);
  CHECK(paired_t_test(a, b, Alternative::less).p_value == 1.0);

  // Paired equals the one-sample test of the differences, and is sign-antisymmetric.
  const auto x = normal_sample(30, 0.2, 1.0, 1), y = normal_sample(30, 0.0, 1.0, 2);
  const TTest xy = paired_t_test(x, y), yx = paired_t_test(y, x);
  CHECK(xy.statistic == doctest::Approx(-yx.statistic).epsilon(1e-14));
  CHECK(xy.p_value == doctest::Approx(yx.p_value).epsilon(1e-13));
  // One-sided p-values of both sides add to 1 and the two-sided one is twice the smaller.
  const TTest g = welch_t_test(x, y, Alternative::greater), l = welch_t_test(x, y, Alternative::less);
  const TTest two = welch_t_test(x, y);
  CHECK(g.p_value + l.p_value == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(two.p_value == doctest::Approx(2 * std::min(g.p_value, l.p_value)).epsilon(1e-13));

  CHECK(contains(error_of([] { welch_t_test(std::vector<double>{1.0}, std::vector<double>{1.0, 2.0}); }),
                 "at least 2 values"));
  CHECK(contains(error_of([] { paired_t_test(std::vector<double>{1.0, 2.0}, std::vector<double>{1.0}); }),
                 "a has 2 values but b has 1"));
  CHECK(contains(error_of([] { welch_t_test(std::vector<double>{1.0, INFINITY}, std::vector<double>{1.0, 2.0}); }),
                 "a[1] = inf is not finite"));
  CHECK(std::string(to_string(Alternative::two_sided)) == "two-sided");
}

// ---------------------------------------------------------------------------------------
// Bootstrap
// ---------------------------------------------------------------------------------------

// The documented algorithm, written out: index j of resample r is floor(w n / 2^32) for the
// word w at index r n + j of Rng(seed, bootstrap_stream); quantiles interpolate linearly at
// (B - 1) q.
TEST_CASE("bootstrap_mean_ci: matches its definition, deterministic, thread-independent") {
  const std::vector<double> x = {0.3, -1.2, 2.5, 0.7, 0.0, 4.1, -0.4};
  const std::size_t B = 9;
  const std::uint64_t seed = 77;
  const rlxf::Rng rng(seed, bootstrap_stream);
  std::vector<double> means;
  for (std::size_t r = 0; r < B; ++r) {
    double s = 0;
    for (std::size_t j = 0; j < x.size(); ++j)
      s += x[(std::uint64_t{rng.bits(r * x.size() + j)} * x.size()) >> 32];
    means.push_back(s / static_cast<double>(x.size()));
  }
  std::sort(means.begin(), means.end());
  // level 0.8: q = 0.1 -> h = 0.8, q = 0.9 -> h = 7.2
  const double lo = means[0] + 0.8 * (means[1] - means[0]);
  const double hi = means[7] + 0.2 * (means[8] - means[7]);
  const ConfidenceInterval ci = bootstrap_mean_ci(x, 0.8, B, seed);
  CHECK(ci.lower == doctest::Approx(lo).epsilon(1e-15));
  CHECK(ci.upper == doctest::Approx(hi).epsilon(1e-15));
  CHECK(ci.estimate == doctest::Approx(summarize(x).mean).epsilon(1e-15));
  CHECK(ci.level == 0.8);

  // Same seed, same interval (bit for bit), with 1 or 2 threads; another seed differs.
  const auto data = normal_sample(500, 1.0, 2.0, 5);
  const int threads = rlxf::max_threads();
  rlxf::set_threads(1);
  const ConfidenceInterval c1 = bootstrap_mean_ci(data, 0.95, 4000, 3);
  rlxf::set_threads(2);
  const ConfidenceInterval c2 = bootstrap_mean_ci(data, 0.95, 4000, 3);
  rlxf::set_threads(threads);
  const ConfidenceInterval c3 = bootstrap_mean_ci(data, 0.95, 4000, 4);
  CHECK(c1.lower == c2.lower);
  CHECK(c1.upper == c2.upper);
  CHECK(c3.lower != c1.lower);
  CHECK(c1.lower < c1.estimate);
  CHECK(c1.estimate < c1.upper);

  // Constant data: every resample has the same mean.
  const std::vector<double> constant(20, 2.5);
  const ConfidenceInterval cc = bootstrap_mean_ci(constant);
  CHECK(cc.lower == 2.5);
  CHECK(cc.upper == 2.5);

  CHECK(contains(error_of([] { bootstrap_mean_ci(std::vector<double>{}); }), "x is empty"));
  CHECK(contains(error_of([] { bootstrap_mean_ci(std::vector<double>{1.0}, 1.0); }), "expected in (0, 1)"));
  CHECK(contains(error_of([] { bootstrap_mean_ci(std::vector<double>{1.0}, 0.9, 1); }), "at least 2"));
}

// Coverage: 400 data sets of n = 100 from N(3, 2^2), each with a 95% percentile interval
// from 2000 resamples; count how often the interval holds the true mean 3.
//
// Expected rate. The percentile interval of the mean is close to xbar -+ z s_n / sqrt(n),
// with z = 1.96 and the plug-in s_n = s sqrt((n - 1)/n), so it covers with probability about
// P(|T_99| <= 1.96 sqrt(0.99)) = 0.946 (the small-sample under-coverage of the percentile
// method; 0.950 in the limit). The count is Binomial(400, 0.946): standard deviation
// sqrt(400 0.946 0.054) = 4.5, i.e. 0.0113 in the rate. We accept 0.946 +- 3.5 sd, counts
// 363 to 394 (rates 0.9075 to 0.985): a correct implementation fails with probability below
// 5e-4 over seeds (the test itself is deterministic), while an interval of the wrong width
// fails: a 90% interval covers 0.894 (about 358 of 400), one built on the standard deviation
// instead of the standard error covers everything (400), one on s / n covers 0.16 (62).
TEST_CASE("bootstrap_mean_ci: coverage of the true mean in 400 repetitions") {
  std::size_t covered = 0;
  for (std::uint64_t rep = 0; rep < 400; ++rep) {
    const auto x = normal_sample(100, 3.0, 2.0, 1000 + rep);
    const ConfidenceInterval ci = bootstrap_mean_ci(x, 0.95, 2000, rep);
    if (ci.lower <= 3.0 && 3.0 <= ci.upper) ++covered;
  }
  MESSAGE("95% percentile bootstrap covered the true mean in ", covered, " of 400 repetitions");
  CHECK(covered >= 363);
  CHECK(covered <= 394);
}

// Width: about 2 z s_n / sqrt(n). Normalised by the sample's own s / sqrt(n), the width is
// 2 (1.96) sqrt((n-1)/n) up to the Monte Carlo error of the quantiles (10,000 resamples:
// about 1.5% of the width for the normal shape), so it shrinks like 1/sqrt(n).
TEST_CASE("bootstrap_mean_ci: the interval shrinks like 1 / sqrt(n)") {
  double previous = INFINITY;
  for (std::size_t n : {25, 100, 400, 1600}) {
    const auto x = normal_sample(n, 0.0, 1.0, 40 + n);
    const ConfidenceInterval ci = bootstrap_mean_ci(x, 0.95, 10000, 9);
    const double width = ci.upper - ci.lower;
    const Summary s = summarize(x);
    const double expected = 2 * 1.959963984540054 * std::sqrt((static_cast<double>(n) - 1) / static_cast<double>(n));
    MESSAGE("n = ", n, ": width ", width, ", width / (s / sqrt(n)) = ", width / s.std_error, " (expected ", expected, ")");
    CHECK(width < previous);
    CHECK(width / s.std_error == doctest::Approx(expected).epsilon(0.06));
    previous = width;
  }
}

TEST_CASE("bootstrap_mean_difference_ci and the paired version") {
  const auto a = normal_sample(300, 1.0, 1.0, 21), b = normal_sample(200, 0.5, 2.0, 22);
  const ConfidenceInterval d = bootstrap_mean_difference_ci(a, b, 0.95, 5000, 1);
  CHECK(d.estimate == doctest::Approx(summarize(a).mean - summarize(b).mean).epsilon(1e-14));
  // Width about 2 z sqrt(s_a^2/n_a + s_b^2/n_b) (the Welch standard error).
  const double se = welch_t_test(a, b).std_error;
  CHECK((d.upper - d.lower) / se == doctest::Approx(2 * 1.96).epsilon(0.06));
  CHECK(d.lower < d.estimate);
  CHECK(d.estimate < d.upper);
  const ConfidenceInterval d2 = bootstrap_mean_difference_ci(a, b, 0.95, 5000, 1);
  CHECK(d2.lower == d.lower);
  CHECK(d2.upper == d.upper);

  // Paired: same prompts, a shared per-prompt effect much larger than the difference.
  const auto prompt = normal_sample(200, 0.0, 5.0, 30), noise = normal_sample(200, 0.2, 0.3, 31);
  std::vector<double> pa(200), pb(200), diff(200);
  for (std::size_t i = 0; i < 200; ++i) {
    pa[i] = prompt[i] + noise[i];
    pb[i] = prompt[i];
    diff[i] = pa[i] - pb[i];
  }
  const ConfidenceInterval p = bootstrap_paired_mean_difference_ci(pa, pb, 0.95, 5000, 2);
  const ConfidenceInterval q = bootstrap_mean_ci(diff, 0.95, 5000, 2);
  CHECK(p.lower == q.lower);
  CHECK(p.upper == q.upper);
  // Pairing removes the prompt effect: the unpaired interval is far wider.
  const ConfidenceInterval u = bootstrap_mean_difference_ci(pa, pb, 0.95, 5000, 2);
  CHECK((u.upper - u.lower) > 5 * (p.upper - p.lower));
  CHECK(p.lower > 0.0);
}

// ---------------------------------------------------------------------------------------
// Win rate
// ---------------------------------------------------------------------------------------

TEST_CASE("win_rate: closed forms, ties count one half") {
  const std::vector<double> a = {1, 2, 3, 4}, b = {0, 2, 5, 1};  // win, tie, loss, win
  CHECK(win_rate(a, b) == 2.5 / 4);
  CHECK(win_rate(b, a) == 1.5 / 4);
  CHECK(win_rate(a, a) == 0.5);
  const std::vector<double> big = {10, 20, 30}, small = {1, 2, 3};
  CHECK(win_rate(big, small) == 1.0);
  CHECK(win_rate(small, big) == 0.0);
  const WinRate w = win_rate_interval(a, b);
  CHECK(w.n == 4);
  CHECK(w.wins == 2);
  CHECK(w.ties == 1);
  CHECK(w.losses == 1);
  CHECK(w.ci.estimate == w.rate);
  CHECK(w.ci.lower < w.rate);
  CHECK(w.rate < w.ci.upper);
  // All wins: the Wilson upper end is exactly 1 and the lower end n / (n + z^2).
  const WinRate all = win_rate_interval(big, small);
  const double z = normal_quantile(0.975);
  CHECK(all.ci.upper == 1.0);
  CHECK(all.ci.lower == doctest::Approx(3.0 / (3.0 + z * z)).epsilon(1e-14));
  CHECK(contains(error_of([] { win_rate(std::vector<double>{}, std::vector<double>{}); }), "n = 0"));
  CHECK(contains(error_of([] { win_rate(std::vector<double>{1.0}, std::vector<double>{1.0, 2.0}); }),
                 "a has 1 values but b has 2"));
}

TEST_CASE("wilson_interval: against the formula with scipy.stats.norm.ppf") {
  double worst = 0;
  for (const auto& c : fixture()["wilson"]) {
    const ConfidenceInterval ci = wilson_interval(c["successes"], c["n"].get<std::size_t>(), c["level"]);
    worst = std::max({worst, rel_err(ci.estimate, c["estimate"]), rel_err(ci.lower, c["lower"]),
                      rel_err(ci.upper, c["upper"])});
  }
  MESSAGE("Wilson: max relative error ", worst);
  CHECK(worst < 1e-13);
  CHECK(contains(error_of([] { wilson_interval(11, 10); }), "expected in [0, 10]"));
}
