#pragma once
// Test support: finite differences in double precision and random inputs.
//
// Derivatives use the fourth-order central stencil
//   f'(x) ~ [8 (f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))] / (12 h),  h = 1e-3,
// whose truncation error (~h^4) and rounding error (~1e-16 |f| / h) are both near 1e-12, so
// a relative agreement of 1e-6 is meaningful.
//
// Error measure (used by every gradient test): for each checked entry i,
//   err_i = |analytic_i - numeric_i| / max(|analytic_i|, |numeric_i|, 1e-4)
// i.e. the relative error, except that entries whose gradient is below 1e-4 in magnitude are
// held to an absolute error of 1e-10 (err < 1e-6 with the floor): a gradient that is zero in
// exact arithmetic (e.g. attention's key bias, which shifts every score of a row equally) has
// no meaningful relative error. Tests require max_i err_i < 1e-6 in double.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "rlxf/core/rng.hpp"

namespace rlxf::test {

struct GradCheck {
  double max_error = 0;       // max_i err_i as defined above
  std::size_t worst = 0;      // index of the worst entry
  double analytic = 0, numeric = 0;  // their values there
  std::size_t checked = 0;
};

// Checks `analytic` (dLoss/dx) against finite differences of `loss()` with x perturbed in
// place (restored afterwards). `loss` must read x through whatever aliases it holds.
// Every `stride`-th entry is checked (1 = all).
template <class Loss>
GradCheck check_gradient(std::span<double> x, std::span<const double> analytic, Loss&& loss,
                         double h = 1e-3, std::size_t stride = 1) {
  GradCheck r;
  for (std::size_t i = 0; i < x.size(); i += stride) {
    const double saved = x[i];
    auto at = [&](double dx) {
      x[i] = saved + dx;
      return loss();
    };
    const double numeric = (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h);
    x[i] = saved;
    const double denom = std::max({std::abs(analytic[i]), std::abs(numeric), 1e-4});
    const double err = std::abs(analytic[i] - numeric) / denom;
    ++r.checked;
    if (err >= r.max_error) {
      r.max_error = err;
      r.worst = i;
      r.analytic = analytic[i];
      r.numeric = numeric;
    }
  }
  return r;
}

// n values drawn from N(0, scale^2), reproducible from `seed`.
template <class T = double>
std::vector<T> random_normal(std::size_t n, std::uint64_t seed, double scale = 1.0) {
  std::vector<T> v(n);
  rlxf::Rng(seed, 0xC0FFEE).fill_normal(std::span<T>(v), 0.0, scale);
  return v;
}

// sum_i w_i y_i: a scalar loss whose gradient with respect to y is w.
inline double weighted_sum(std::span<const double> y, std::span<const double> w) {
  double s = 0;
  for (std::size_t i = 0; i < y.size(); ++i) s += y[i] * w[i];
  return s;
}

// max_i |a_i - b_i| / max(|b_i|, floor): the agreement measure for f32 vs f64 paths.
template <class A, class B>
double max_relative_difference(const A& a, const B& b, double floor = 1e-3) {
  double m = 0;
  for (std::size_t i = 0; i < std::size(b); ++i)
    m = std::max(m, std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i])) /
                        std::max(std::abs(static_cast<double>(b[i])), floor));
  return m;
}

}  // namespace rlxf::test
