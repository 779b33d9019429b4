#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gradcheck.hpp"
#include "rlxf/cpu/activations.hpp"

using namespace rlxf::cpu;
using rlxf::test::check_gradient;
using rlxf::test::max_relative_difference;
using rlxf::test::random_normal;
using rlxf::test::weighted_sum;

namespace {

// The formulas again, written out independently of the kernels (plain double, own constants).
double gelu_tanh_reference(double x) {
  return 0.5 * x * (1.0 + std::tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}
double gelu_exact_reference(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
double silu_reference(double x) { return x / (1.0 + std::exp(-x)); }

// Float inputs and their exact double copies, so the f32 and f64 paths see the same values.
struct Inputs {
  std::vector<float> f;
  std::vector<double> d;
};
Inputs same_inputs(std::size_t n, std::uint64_t seed, double scale) {
  Inputs in{random_normal<float>(n, seed, scale), {}};
  in.d.assign(in.f.begin(), in.f.end());
  return in;
}

// n = 20000 is above detail::elementwise_min_parallel, so the parallel path runs too.
constexpr std::size_t big_n = 20000;
constexpr std::size_t grad_n = 64;

}  // namespace

TEST_CASE("exact GELU at known points is x * Phi(x), and equals the erf formula") {
  // Phi from standard normal tables (to 16 digits).
  const double xs[] = {-3.0, -1.0, 0.0, 0.5, 1.0, 2.0};
  const double phi[] = {0.0013498980316300946, 0.15865525393145705, 0.5,
                        0.6914624612740131, 0.8413447460685429, 0.9772498680518208};
  double y[6];
  gelu_forward(xs, y, 6, GeluForm::exact);
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(y[i] == doctest::Approx(xs[i] * phi[i]).epsilon(1e-14));
    CHECK(y[i] == doctest::Approx(gelu_exact_reference(xs[i])).epsilon(1e-15));
  }
}

TEST_CASE("tanh GELU matches GPT-2's formula, at known points and on random inputs") {
  const double xs[] = {-0.5, 1.0, 2.0};
  const double expected[] = {-0.15428599017485606, 0.8411919906082768, 1.954597694087775};
  double y[3];
  gelu_forward(xs, y, 3, GeluForm::tanh);
  for (std::size_t i = 0; i < 3; ++i) CHECK(y[i] == doctest::Approx(expected[i]).epsilon(1e-14));

  const auto x = random_normal(big_n, 1, 3.0);
  std::vector<double> yt(big_n), ye(big_n);
  gelu_forward(x.data(), yt.data(), big_n, GeluForm::tanh);
  gelu_forward(x.data(), ye.data(), big_n, GeluForm::exact);
  double max_form_gap = 0;
  for (std::size_t i = 0; i < big_n; ++i) {
    REQUIRE(yt[i] == doctest::Approx(gelu_tanh_reference(x[i])).epsilon(1e-14));
    REQUIRE(ye[i] == doctest::Approx(gelu_exact_reference(x[i])).epsilon(1e-14));
    max_form_gap = std::max(max_form_gap, std::abs(yt[i] - ye[i]));
  }
  // The approximation is good to a few 1e-4, but it is a different function.
  CHECK(max_form_gap > 1e-5);
  CHECK(max_form_gap < 1e-3);
}

TEST_CASE("SiLU and SwiGLU values, saturated inputs included") {
  const double xs[] = {1.0, 0.0, -800.0, 800.0};
  double y[4];
  silu_forward(xs, y, 4);
  CHECK(y[0] == doctest::Approx(0.7310585786300049).epsilon(1e-15));
  CHECK(y[1] == 0.0);
  CHECK(y[2] == 0.0);  // exp(800) overflows to inf: the result is -0, not NaN
  CHECK(y[3] == 800.0);

  const auto g = random_normal(big_n, 2, 2.0), u = random_normal(big_n, 3);
  std::vector<double> s(big_n);
  swiglu_forward(g.data(), u.data(), s.data(), big_n);
  for (std::size_t i = 0; i < big_n; ++i)
    REQUIRE(s[i] == doctest::Approx(silu_reference(g[i]) * u[i]).epsilon(1e-14));
}

TEST_CASE("GELU backward (both forms) matches finite differences and accumulates") {
  for (const GeluForm form : {GeluForm::tanh, GeluForm::exact}) {
    CAPTURE(static_cast<int>(form));
    auto x = random_normal(grad_n, 4, 2.0);
    const auto w = random_normal(grad_n, 5);
    std::vector<double> y(grad_n), dx(grad_n, 0.0);
    gelu_backward(x.data(), w.data(), dx.data(), grad_n, form);
    const auto r = check_gradient(x, dx, [&] {
      gelu_forward(x.data(), y.data(), grad_n, form);
      return weighted_sum(y, w);
    });
    CHECK(r.max_error < 1e-6);
    // A second call adds the same gradient again.
    const auto once = dx;
    gelu_backward(x.data(), w.data(), dx.data(), grad_n, form);
    for (std::size_t i = 0; i < grad_n; ++i) REQUIRE(dx[i] == 2 * once[i]);
  }
}

TEST_CASE("SiLU backward matches finite differences and accumulates") {
  auto x = random_normal(grad_n, 6, 3.0);
  const auto w = random_normal(grad_n, 7);
  std::vector<double> y(grad_n), dx(grad_n, 0.0);
  silu_backward(x.data(), w.data(), dx.data(), grad_n);
  const auto r = check_gradient(x, dx, [&] {
    silu_forward(x.data(), y.data(), grad_n);
    return weighted_sum(y, w);
  });
  CHECK(r.max_error < 1e-6);
  const auto once = dx;
  silu_backward(x.data(), w.data(), dx.data(), grad_n);
  for (std::size_t i = 0; i < grad_n; ++i) REQUIRE(dx[i] == 2 * once[i]);
}

TEST_CASE("SwiGLU backward matches finite differences for gate and up, and accumulates") {
  auto g = random_normal(grad_n, 8, 2.0), u = random_normal(grad_n, 9);
  const auto w = random_normal(grad_n, 10);
  std::vector<double> y(grad_n), dg(grad_n, 0.0), du(grad_n, 0.0);
  swiglu_backward(g.data(), u.data(), w.data(), dg.data(), du.data(), grad_n);
  const auto loss = [&] {
    swiglu_forward(g.data(), u.data(), y.data(), grad_n);
    return weighted_sum(y, w);
  };
  CHECK(check_gradient(g, dg, loss).max_error < 1e-6);
  CHECK(check_gradient(u, du, loss).max_error < 1e-6);
  const auto dg1 = dg, du1 = du;
  swiglu_backward(g.data(), u.data(), w.data(), dg.data(), du.data(), grad_n);
  for (std::size_t i = 0; i < grad_n; ++i) {
    REQUIRE(dg[i] == 2 * dg1[i]);
    REQUIRE(du[i] == 2 * du1[i]);
  }
}

TEST_CASE("activations: float agrees with double, forward and backward") {
  // Tolerance 1e-5 relative (floor 1e-3 absolute scale): a handful of float roundings in
  // tanh/erf/exp and the products, each at most 6e-8 relative, plus the float constants.
  const double tol = 1e-5;
  const auto x = same_inputs(big_n, 11, 3.0), u = same_inputs(big_n, 12, 1.0);
  std::vector<float> yf(big_n);
  std::vector<double> yd(big_n);
  for (const GeluForm form : {GeluForm::tanh, GeluForm::exact}) {
    gelu_forward(x.f.data(), yf.data(), big_n, form);
    gelu_forward(x.d.data(), yd.data(), big_n, form);
    CHECK(max_relative_difference(yf, yd) < tol);
  }
  silu_forward(x.f.data(), yf.data(), big_n);
  silu_forward(x.d.data(), yd.data(), big_n);
  CHECK(max_relative_difference(yf, yd) < tol);
  swiglu_forward(x.f.data(), u.f.data(), yf.data(), big_n);
  swiglu_forward(x.d.data(), u.d.data(), yd.data(), big_n);
  CHECK(max_relative_difference(yf, yd) < tol);

  // Backwards likewise (dy = u), accumulated into zeros. gelu' and silu' cross zero, where
  // terms of size ~0.2 cancel: there float keeps an absolute, not a relative, error of a few
  // 1e-8, so the comparison floor is 0.1 (an absolute error below 1e-6).
  const double floor = 0.1;
  for (const GeluForm form : {GeluForm::tanh, GeluForm::exact}) {
    std::vector<float> df(big_n, 0.0f);
    std::vector<double> dd(big_n, 0.0);
    gelu_backward(x.f.data(), u.f.data(), df.data(), big_n, form);
    gelu_backward(x.d.data(), u.d.data(), dd.data(), big_n, form);
    CHECK(max_relative_difference(df, dd, floor) < tol);
  }
  std::vector<float> df(big_n, 0.0f), df2(big_n, 0.0f);
  std::vector<double> dd(big_n, 0.0), dd2(big_n, 0.0);
  silu_backward(x.f.data(), u.f.data(), df.data(), big_n);
  silu_backward(x.d.data(), u.d.data(), dd.data(), big_n);
  CHECK(max_relative_difference(df, dd, floor) < tol);
  std::fill(df.begin(), df.end(), 0.0f);
  std::fill(dd.begin(), dd.end(), 0.0);
  swiglu_backward(x.f.data(), u.f.data(), u.f.data(), df.data(), df2.data(), big_n);
  swiglu_backward(x.d.data(), u.d.data(), u.d.data(), dd.data(), dd2.data(), big_n);
  CHECK(max_relative_difference(df, dd, floor) < tol);
  CHECK(max_relative_difference(df2, dd2, floor) < tol);
}
