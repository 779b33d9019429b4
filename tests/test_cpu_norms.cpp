#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gradcheck.hpp"
#include "rlxf/core/threading.hpp"
#include "rlxf/cpu/layernorm.hpp"
#include "rlxf/cpu/rmsnorm.hpp"

using namespace rlxf::cpu;
using rlxf::test::check_gradient;
using rlxf::test::max_relative_difference;
using rlxf::test::random_normal;
using rlxf::test::weighted_sum;

namespace {

// Rows with their own offsets and scales, as activations have.
std::vector<double> activations(std::size_t N, std::size_t C, std::uint64_t seed) {
  auto x = random_normal(N * C, seed);
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t c = 0; c < C; ++c)
      x[i * C + c] = 0.5 * static_cast<double>(i) - 1.0 + (1.0 + 0.3 * static_cast<double>(i)) * x[i * C + c];
  return x;
}

}  // namespace

TEST_CASE("layernorm forward matches the definition, with and without beta") {
  const std::size_t N = 6, C = 33;
  const double eps = 1e-5;
  const auto x = activations(N, C, 1), gamma = random_normal(C, 2), beta = random_normal(C, 3);
  std::vector<double> y(N * C), y_nobias(N * C), mean(N), rstd(N);
  layernorm_forward(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), N, C, eps);
  layernorm_forward(x.data(), gamma.data(), static_cast<const double*>(nullptr), y_nobias.data(),
                    mean.data(), rstd.data(), N, C, eps);
  for (std::size_t i = 0; i < N; ++i) {
    long double m = 0, v = 0;
    for (std::size_t c = 0; c < C; ++c) m += x[i * C + c];
    m /= C;
    for (std::size_t c = 0; c < C; ++c) v += (x[i * C + c] - m) * (x[i * C + c] - m);
    v /= C;  // biased
    const long double r = 1 / std::sqrt(v + eps);
    CHECK(mean[i] == doctest::Approx(static_cast<double>(m)).epsilon(1e-14));
    CHECK(rstd[i] == doctest::Approx(static_cast<double>(r)).epsilon(1e-14));
    for (std::size_t c = 0; c < C; ++c) {
      const auto norm = static_cast<double>((x[i * C + c] - m) * r);
      REQUIRE(y[i * C + c] == doctest::Approx(norm * gamma[c] + beta[c]).epsilon(1e-13));
      REQUIRE(y_nobias[i * C + c] == doctest::Approx(norm * gamma[c]).epsilon(1e-13));
    }
  }
}

TEST_CASE("layernorm with gamma = 1, no beta: every row has mean 0 and variance var/(var+eps)") {
  const std::size_t N = 9, C = 64;
  const double eps = 1e-5;
  const auto x = activations(N, C, 4);
  const std::vector<double> ones(C, 1.0);
  std::vector<double> y(N * C), mean(N), rstd(N);
  layernorm_forward(x.data(), ones.data(), static_cast<const double*>(nullptr), y.data(),
                    mean.data(), rstd.data(), N, C, eps);
  for (std::size_t i = 0; i < N; ++i) {
    double m = 0, v = 0;
    for (std::size_t c = 0; c < C; ++c) m += y[i * C + c];
    m /= C;
    for (std::size_t c = 0; c < C; ++c) v += (y[i * C + c] - m) * (y[i * C + c] - m);
    v /= C;
    const double var_x = 1 / (rstd[i] * rstd[i]) - eps;
    CHECK(std::abs(m) < 1e-14);
    CHECK(v == doctest::Approx(var_x / (var_x + eps)).epsilon(1e-13));
    CHECK(v == doctest::Approx(1.0).epsilon(1e-4));
  }
}

TEST_CASE("rmsnorm forward matches the definition") {
  const std::size_t N = 5, C = 31;
  const double eps = 1e-6;
  const auto x = activations(N, C, 5), gamma = random_normal(C, 6);
  std::vector<double> y(N * C), rstd(N);
  rmsnorm_forward(x.data(), gamma.data(), y.data(), rstd.data(), N, C, eps);
  for (std::size_t i = 0; i < N; ++i) {
    long double sq = 0;
    for (std::size_t c = 0; c < C; ++c) sq += static_cast<long double>(x[i * C + c]) * x[i * C + c];
    const long double r = 1 / std::sqrt(sq / C + eps);
    CHECK(rstd[i] == doctest::Approx(static_cast<double>(r)).epsilon(1e-14));
    for (std::size_t c = 0; c < C; ++c)
      REQUIRE(y[i * C + c] == doctest::Approx(static_cast<double>(x[i * C + c] * r) * gamma[c]).epsilon(1e-14));
  }
}

TEST_CASE("layernorm backward matches finite differences (x, gamma, beta) and accumulates") {
  const std::size_t N = 5, C = 16;
  const double eps = 1e-5;
  for (const bool with_beta : {true, false}) {
    CAPTURE(with_beta);
    auto x = activations(N, C, 7), gamma = random_normal(C, 8), beta = random_normal(C, 9);
    const auto w = random_normal(N * C, 10);
    const double* b = with_beta ? beta.data() : nullptr;
    std::vector<double> y(N * C), mean(N), rstd(N);
    std::vector<double> dx(N * C, 0.0), dgamma(C, 0.0), dbeta(C, 0.0);
    const auto forward = [&] {
      layernorm_forward(x.data(), gamma.data(), b, y.data(), mean.data(), rstd.data(), N, C, eps);
    };
    const auto backward = [&] {
      layernorm_backward(w.data(), x.data(), gamma.data(), mean.data(), rstd.data(), dx.data(),
                         dgamma.data(), with_beta ? dbeta.data() : nullptr, N, C);
    };
    forward();
    backward();
    const auto loss = [&] {
      forward();
      return weighted_sum(y, w);
    };
    CHECK(check_gradient(x, dx, loss).max_error < 1e-6);
    CHECK(check_gradient(gamma, dgamma, loss).max_error < 1e-6);
    if (with_beta) CHECK(check_gradient(beta, dbeta, loss).max_error < 1e-6);
    else for (const double v : dbeta) CHECK(v == 0.0);

    forward();  // mean and rstd at the unperturbed x
    const auto dx1 = dx, dgamma1 = dgamma, dbeta1 = dbeta;
    backward();
    for (std::size_t i = 0; i < N * C; ++i) REQUIRE(dx[i] == 2 * dx1[i]);
    for (std::size_t c = 0; c < C; ++c) {
      REQUIRE(dgamma[c] == 2 * dgamma1[c]);
      REQUIRE(dbeta[c] == 2 * dbeta1[c]);
    }
  }
}

TEST_CASE("rmsnorm backward matches finite differences (x, gamma) and accumulates") {
  const std::size_t N = 5, C = 16;
  const double eps = 1e-6;
  auto x = activations(N, C, 11), gamma = random_normal(C, 12);
  const auto w = random_normal(N * C, 13);
  std::vector<double> y(N * C), rstd(N), dx(N * C, 0.0), dgamma(C, 0.0);
  rmsnorm_forward(x.data(), gamma.data(), y.data(), rstd.data(), N, C, eps);
  rmsnorm_backward(w.data(), x.data(), gamma.data(), rstd.data(), dx.data(), dgamma.data(), N, C);
  const auto loss = [&] {
    rmsnorm_forward(x.data(), gamma.data(), y.data(), rstd.data(), N, C, eps);
    return weighted_sum(y, w);
  };
  CHECK(check_gradient(x, dx, loss).max_error < 1e-6);
  CHECK(check_gradient(gamma, dgamma, loss).max_error < 1e-6);

  rmsnorm_forward(x.data(), gamma.data(), y.data(), rstd.data(), N, C, eps);
  const auto dx1 = dx, dgamma1 = dgamma;
  rmsnorm_backward(w.data(), x.data(), gamma.data(), rstd.data(), dx.data(), dgamma.data(), N, C);
  for (std::size_t i = 0; i < N * C; ++i) REQUIRE(dx[i] == 2 * dx1[i]);
  for (std::size_t c = 0; c < C; ++c) REQUIRE(dgamma[c] == 2 * dgamma1[c]);
}

TEST_CASE("layernorm and rmsnorm: float forwards agree with double") {
  // Tolerance 1e-5 relative: the row statistics are summed in double, then each element takes
  // a few float roundings (~6e-8 each). Outputs are (x - mean) * rstd * gamma + beta, terms of
  // size ~1 that cancel where y is near 0: there float keeps an absolute error of ~1e-7, so
  // outputs are compared with a floor of 0.1.
  const double tol = 1e-5, floor = 0.1;
  const std::size_t N = 16, C = 768;
  const float eps = 1e-5f;
  const auto xd0 = activations(N, C, 14);
  const std::vector<float> xf(xd0.begin(), xd0.end()), gf = random_normal<float>(C, 15),
                           bf = random_normal<float>(C, 16);
  const std::vector<double> xd(xf.begin(), xf.end()), gd(gf.begin(), gf.end()), bd(bf.begin(), bf.end());
  std::vector<float> yf(N * C), mf(N), rf(N);
  std::vector<double> yd(N * C), md(N), rd(N);
  layernorm_forward(xf.data(), gf.data(), bf.data(), yf.data(), mf.data(), rf.data(), N, C, eps);
  layernorm_forward(xd.data(), gd.data(), bd.data(), yd.data(), md.data(), rd.data(), N, C,
                    static_cast<double>(eps));
  CHECK(max_relative_difference(yf, yd, floor) < tol);
  CHECK(max_relative_difference(mf, md) < tol);
  CHECK(max_relative_difference(rf, rd) < tol);
  rmsnorm_forward(xf.data(), gf.data(), yf.data(), rf.data(), N, C, eps);
  rmsnorm_forward(xd.data(), gd.data(), yd.data(), rd.data(), N, C, static_cast<double>(eps));
  CHECK(max_relative_difference(yf, yd, floor) < tol);
  CHECK(max_relative_difference(rf, rd) < tol);
}

TEST_CASE("norm gradients are the same bits whatever the thread count") {
  const std::size_t N = 257, C = 200;  // C spans several channel blocks, the last one partial
  const auto x = random_normal<float>(N * C, 17), dy = random_normal<float>(N * C, 18),
             gamma = random_normal<float>(C, 19), beta = random_normal<float>(C, 20);
  std::vector<float> y(N * C), mean(N), rstd(N), rms_rstd(N);
  layernorm_forward(x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data(), N, C, 1e-5f);
  rmsnorm_forward(x.data(), gamma.data(), y.data(), rms_rstd.data(), N, C, 1e-5f);
  const int saved = rlxf::max_threads();
  const auto run = [&](int threads) {
    rlxf::set_threads(threads);
    std::vector<float> dx(N * C, 0.0f), dgamma(C, 0.0f), dbeta(C, 0.0f), rms_dgamma(C, 0.0f);
    layernorm_backward(dy.data(), x.data(), gamma.data(), mean.data(), rstd.data(), dx.data(),
                       dgamma.data(), dbeta.data(), N, C);
    rmsnorm_backward(dy.data(), x.data(), gamma.data(), rms_rstd.data(), dx.data(),
                     rms_dgamma.data(), N, C);
    return std::vector<std::vector<float>>{dx, dgamma, dbeta, rms_dgamma};
  };
  const auto one = run(1);
  const auto many = run(std::max(saved, 2));
  rlxf::set_threads(saved);
  CHECK(one == many);
}
