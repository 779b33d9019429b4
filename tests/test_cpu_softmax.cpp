#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "gradcheck.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cpu/softmax.hpp"

using namespace rlxf::cpu;
using rlxf::test::check_gradient;
using rlxf::test::max_relative_difference;
using rlxf::test::random_normal;
using rlxf::test::weighted_sum;

namespace {

// Softmax of one row by the definition, in long double, for moderate logits.
std::vector<double> softmax_reference(const double* x, std::size_t C) {
  long double sum = 0;
  for (std::size_t j = 0; j < C; ++j) sum += std::exp(static_cast<long double>(x[j]));
  std::vector<double> y(C);
  for (std::size_t j = 0; j < C; ++j)
    y[j] = static_cast<double>(std::exp(static_cast<long double>(x[j])) / sum);
  return y;
}

}  // namespace

TEST_CASE("softmax rows are positive, sum to 1 and match the definition") {
  const std::size_t N = 13, C = 37;
  const auto x = random_normal(N * C, 1, 3.0);
  std::vector<double> y(N * C), ly(N * C);
  softmax_forward(x.data(), y.data(), N, C);
  log_softmax_forward(x.data(), ly.data(), N, C);
  for (std::size_t i = 0; i < N; ++i) {
    const auto ref = softmax_reference(x.data() + i * C, C);
    double sum = 0;
    for (std::size_t j = 0; j < C; ++j) {
      const double v = y[i * C + j];
      REQUIRE(v > 0);
      REQUIRE(v == doctest::Approx(ref[j]).epsilon(1e-14));
      REQUIRE(std::exp(ly[i * C + j]) == doctest::Approx(ref[j]).epsilon(1e-14));
      sum += v;
    }
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-15));
  }
}

TEST_CASE_TEMPLATE("huge logits stay finite: softmax is shift invariant", T, float, double) {
  // Row 0 around 1e4, row 1 the same values shifted to around 0; one -1e4 outlier.
  const std::size_t C = 5;
  const T base[C] = {T(0), T(-1), T(-2.5), T(-20000), T(0.75)};
  std::vector<T> x(2 * C);
  for (std::size_t j = 0; j < C; ++j) {
    x[j] = base[j] + T(10000);
    x[C + j] = base[j];
  }
  std::vector<T> y(2 * C), ly(2 * C), losses(2), lse(2);
  softmax_forward(x.data(), y.data(), 2, C);
  log_softmax_forward(x.data(), ly.data(), 2, C);
  const std::int32_t targets[2] = {4, 4};
  cross_entropy_forward(x.data(), targets, losses.data(), lse.data(), 2, C);
  for (std::size_t j = 0; j < C; ++j) {
    REQUIRE(std::isfinite(y[j]));
    REQUIRE(std::isfinite(ly[j]));
    CHECK(y[j] == doctest::Approx(y[C + j]).epsilon(1e-6));
    CHECK(ly[j] == doctest::Approx(ly[C + j]).epsilon(1e-6));
  }
  CHECK(y[3] == T(0));  // exp(-20000) underflows cleanly
  REQUIRE(std::isfinite(losses[0]));
  CHECK(losses[0] == doctest::Approx(losses[1]).epsilon(1e-5));
  CHECK(lse[0] == doctest::Approx(lse[1] + T(10000)).epsilon(1e-6));
  // Gradients: finite, and each row of softmax - onehot sums to 0.
  const T dlosses[2] = {T(1), T(1)};
  std::vector<T> dx(2 * C, T(0));
  cross_entropy_backward(x.data(), targets, lse.data(), dlosses, dx.data(), 2, C);
  T row_sum = 0;
  for (std::size_t j = 0; j < C; ++j) {
    REQUIRE(std::isfinite(dx[j]));
    row_sum += dx[j];
  }
  CHECK(std::abs(row_sum) < T(1e-3));
}

TEST_CASE("cross-entropy: uniform logits give ln V, values equal -log_softmax at the target") {
  const std::size_t N = 4, V = 1000;
  std::vector<double> uniform(N * V, 3.25), losses(N), lse(N);
  const std::int32_t targets[N] = {0, 999, 500, 17};
  CHECK(cross_entropy_forward(uniform.data(), targets, losses.data(), lse.data(), N, V) == N);
  for (std::size_t i = 0; i < N; ++i) {
    CHECK(losses[i] == doctest::Approx(std::log(1000.0)).epsilon(1e-14));
    CHECK(lse[i] == doctest::Approx(3.25 + std::log(1000.0)).epsilon(1e-14));
  }

  const auto x = random_normal(N * V, 2, 2.0);
  std::vector<double> ly(N * V);
  log_softmax_forward(x.data(), ly.data(), N, V);
  cross_entropy_forward(x.data(), targets, losses.data(), lse.data(), N, V);
  for (std::size_t i = 0; i < N; ++i)
    CHECK(losses[i] == doctest::Approx(-ly[i * V + static_cast<std::size_t>(targets[i])]).epsilon(1e-13));
}

TEST_CASE("cross-entropy ignores rows whose target is the ignore index") {
  const std::size_t N = 5, V = 6;
  const auto x = random_normal(N * V, 3);
  const std::int32_t targets[N] = {-100, 2, -100, 5, 0};
  std::vector<double> losses(N, 99.0), lse(N), dlosses(N, 1.0), dx(N * V, 0.5);
  CHECK(cross_entropy_forward(x.data(), targets, losses.data(), lse.data(), N, V) == 3);
  CHECK(losses[0] == 0.0);
  CHECK(losses[2] == 0.0);
  CHECK(losses[1] > 0.0);
  // lse is written for ignored rows too.
  CHECK(lse[0] == doctest::Approx(std::log(std::exp(x[0]) + std::exp(x[1]) + std::exp(x[2]) +
                                           std::exp(x[3]) + std::exp(x[4]) + std::exp(x[5]))));
  cross_entropy_backward(x.data(), targets, lse.data(), dlosses.data(), dx.data(), N, V);
  for (std::size_t j = 0; j < V; ++j) {
    CHECK(dx[0 * V + j] == 0.5);  // untouched
    CHECK(dx[2 * V + j] == 0.5);
  }
  // A custom ignore index; -100 is then an error.
  const std::int32_t custom[N] = {7, 2, 7, 5, 0};
  CHECK(cross_entropy_forward(x.data(), custom, losses.data(), lse.data(), N, V, 7) == 3);
  CHECK_THROWS_AS(cross_entropy_forward(x.data(), targets, losses.data(), lse.data(), N, V, 7),
                  rlxf::Error);
}

TEST_CASE("cross-entropy rejects a target outside the vocabulary, naming row and value") {
  const std::size_t N = 4, V = 6;
  const auto x = random_normal(N * V, 4);
  std::vector<double> losses(N), lse(N);
  for (const std::int32_t bad : {6, -1, 1000}) {
    const std::int32_t targets[N] = {0, 1, bad, 3};
    try {
      cross_entropy_forward(x.data(), targets, losses.data(), lse.data(), N, V);
      FAIL("no exception for target ", bad);
    } catch (const rlxf::Error& e) {
      const std::string what = e.what();
      CHECK(what.find("row 2") != std::string::npos);
      CHECK(what.find("target " + std::to_string(bad)) != std::string::npos);
    }
  }
}

TEST_CASE("softmax and log-softmax backward match finite differences and accumulate") {
  const std::size_t N = 4, C = 9;
  auto x = random_normal(N * C, 5, 2.0);
  const auto w = random_normal(N * C, 6);
  std::vector<double> y(N * C), dx(N * C, 0.0);

  softmax_forward(x.data(), y.data(), N, C);
  softmax_backward(y.data(), w.data(), dx.data(), N, C);
  auto r = check_gradient(x, dx, [&] {
    softmax_forward(x.data(), y.data(), N, C);
    return weighted_sum(y, w);
  });
  CHECK(r.max_error < 1e-6);
  softmax_forward(x.data(), y.data(), N, C);  // check_gradient left y at a perturbed x
  auto once = dx;
  softmax_backward(y.data(), w.data(), dx.data(), N, C);
  for (std::size_t i = 0; i < N * C; ++i) REQUIRE(dx[i] == 2 * once[i]);

  std::fill(dx.begin(), dx.end(), 0.0);
  log_softmax_forward(x.data(), y.data(), N, C);
  log_softmax_backward(y.data(), w.data(), dx.data(), N, C);
  r = check_gradient(x, dx, [&] {
    log_softmax_forward(x.data(), y.data(), N, C);
    return weighted_sum(y, w);
  });
  CHECK(r.max_error < 1e-6);
  log_softmax_forward(x.data(), y.data(), N, C);
  once = dx;
  log_softmax_backward(y.data(), w.data(), dx.data(), N, C);
  for (std::size_t i = 0; i < N * C; ++i) REQUIRE(dx[i] == 2 * once[i]);
}

TEST_CASE("cross-entropy backward matches finite differences, ignored rows included") {
  const std::size_t N = 6, V = 11;
  auto x = random_normal(N * V, 7, 2.0);
  const auto w = random_normal(N, 8);  // dLoss/dlosses
  const std::int32_t targets[N] = {3, -100, 0, 10, -100, 7};
  std::vector<double> losses(N), lse(N), dx(N * V, 0.0);
  cross_entropy_forward(x.data(), targets, losses.data(), lse.data(), N, V);
  cross_entropy_backward(x.data(), targets, lse.data(), w.data(), dx.data(), N, V);
  const auto r = check_gradient(x, dx, [&] {
    cross_entropy_forward(x.data(), targets, losses.data(), lse.data(), N, V);
    return weighted_sum(losses, w);
  });
  CHECK(r.max_error < 1e-6);
  cross_entropy_forward(x.data(), targets, losses.data(), lse.data(), N, V);  // lse at x again
  const auto once = dx;
  cross_entropy_backward(x.data(), targets, lse.data(), w.data(), dx.data(), N, V);
  for (std::size_t i = 0; i < N * V; ++i) REQUIRE(dx[i] == 2 * once[i]);
}

TEST_CASE("softmax, log-softmax, cross-entropy: float agrees with double") {
  // Tolerance 1e-5 relative (floor 1e-3): row sums are accumulated in double, so what is left
  // is a few float roundings (~6e-8 each) in exp, log and the products, plus the rounding of
  // lse (|lse| ~ 10 here) in the losses and gradients.
  const double tol = 1e-5;
  const std::size_t N = 8, C = 5000;
  const auto xf = random_normal<float>(N * C, 9, 3.0);
  const std::vector<double> xd(xf.begin(), xf.end());
  std::vector<float> yf(N * C);
  std::vector<double> yd(N * C);
  softmax_forward(xf.data(), yf.data(), N, C);
  softmax_forward(xd.data(), yd.data(), N, C);
  CHECK(max_relative_difference(yf, yd, 1e-12) < tol);  // every probability, however small
  log_softmax_forward(xf.data(), yf.data(), N, C);
  log_softmax_forward(xd.data(), yd.data(), N, C);
  CHECK(max_relative_difference(yf, yd) < tol);

  std::vector<std::int32_t> targets(N);
  for (std::size_t i = 0; i < N; ++i) targets[i] = static_cast<std::int32_t>(i * 613 % C);
  std::vector<float> lf(N), lsef(N);
  std::vector<double> ld(N), lsed(N);
  cross_entropy_forward(xf.data(), targets.data(), lf.data(), lsef.data(), N, C);
  cross_entropy_forward(xd.data(), targets.data(), ld.data(), lsed.data(), N, C);
  CHECK(max_relative_difference(lf, ld) < tol);
  CHECK(max_relative_difference(lsef, lsed) < tol);

  // Backward: dlosses = 1; values below 1e-3 compared absolutely.
  std::vector<float> dlf(N, 1.0f), dxf(N * C, 0.0f);
  std::vector<double> dld(N, 1.0), dxd(N * C, 0.0);
  cross_entropy_backward(xf.data(), targets.data(), lsef.data(), dlf.data(), dxf.data(), N, C);
  cross_entropy_backward(xd.data(), targets.data(), lsed.data(), dld.data(), dxd.data(), N, C);
  CHECK(max_relative_difference(dxf, dxd) < tol);
}
