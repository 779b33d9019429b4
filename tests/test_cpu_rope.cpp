#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "gradcheck.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cpu/rope.hpp"

using namespace rlxf::cpu;
using rlxf::test::check_gradient;
using rlxf::test::max_relative_difference;
using rlxf::test::random_normal;
using rlxf::test::weighted_sum;

namespace {

// Rotary embedding as a complex product: channel pair (i, i + D/2) is the complex number
// x_i + j x_{i+D/2}, multiplied by exp(j * p / theta^(2i/D)).
std::vector<double> rope_reference(const std::vector<double>& x, const std::vector<std::int32_t>& pos,
                                   std::size_t H, std::size_t D, double theta) {
  std::vector<double> y(x.size());
  const std::size_t half = D / 2;
  for (std::size_t n = 0; n < pos.size(); ++n)
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t i = 0; i < half; ++i) {
        const std::size_t at = (n * H + h) * D + i;
        const double angle = pos[n] / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(D));
        const auto z = std::complex<double>(x[at], x[at + half]) * std::polar(1.0, angle);
        y[at] = z.real();
        y[at + half] = z.imag();
      }
  return y;
}

std::vector<std::int32_t> positions(std::size_t N, std::int32_t step, std::int32_t offset = 0) {
  std::vector<std::int32_t> p(N);
  for (std::size_t n = 0; n < N; ++n) p[n] = offset + static_cast<std::int32_t>(n) * step;
  return p;
}

}  // namespace

TEST_CASE("rope at a hand-computed point: pairs (i, i + D/2) turn by p * theta^(-2i/D)") {
  // D = 4, theta = 10000: pair 0 turns by p, pair 1 by p / 100. At p = 100: 100 and 1 rad.
  double x[4] = {1.0, 1.0, 0.0, 2.0};  // pairs (x0, x2) = (1, 0), (x1, x3) = (1, 2)
  const std::int32_t p = 100;
  rope_forward(x, &p, 1, 1, 4);
  CHECK(x[0] == doctest::Approx(std::cos(100.0)).epsilon(1e-14));
  CHECK(x[2] == doctest::Approx(std::sin(100.0)).epsilon(1e-14));
  CHECK(x[1] == doctest::Approx(std::cos(1.0) - 2 * std::sin(1.0)).epsilon(1e-14));
  CHECK(x[3] == doctest::Approx(2 * std::cos(1.0) + std::sin(1.0)).epsilon(1e-14));
}

TEST_CASE("rope matches the complex-number reference for many tokens, heads and a custom theta") {
  const std::size_t N = 40, H = 3, D = 18;
  for (const double theta : {10000.0, 500000.0}) {
    const auto x = random_normal(N * H * D, 1);
    const auto pos = positions(N, 37, 5);
    auto y = x;
    rope_forward(y.data(), pos.data(), N, H, D, theta);
    const auto ref = rope_reference(x, pos, H, D, theta);
    for (std::size_t k = 0; k < y.size(); ++k) REQUIRE(y[k] == doctest::Approx(ref[k]).epsilon(1e-12));
  }
}

TEST_CASE("rope at position 0 is the identity, and every pair keeps its norm") {
  const std::size_t N = 64, H = 4, D = 16, half = D / 2;
  const auto x = random_normal(N * H * D, 2);
  auto y = x;
  const std::vector<std::int32_t> zero(N, 0);
  rope_forward(y.data(), zero.data(), N, H, D);
  CHECK(y == x);

  const auto pos = positions(N, 129);
  rope_forward(y.data(), pos.data(), N, H, D);
  for (std::size_t nh = 0; nh < N * H; ++nh)
    for (std::size_t i = 0; i < half; ++i) {
      const std::size_t a = nh * D + i, b = a + half;
      REQUIRE(std::hypot(y[a], y[b]) == doctest::Approx(std::hypot(x[a], x[b])).epsilon(1e-14));
    }
  CHECK(y != x);
}

TEST_CASE("after rope, q . k depends only on the position difference") {
  // Token 0 holds q, token 1 holds k (same values at every placement); H heads.
  const std::size_t H = 2, D = 32;
  const auto qk = random_normal(2 * H * D, 3);
  const auto scores = [&](std::int32_t pq, std::int32_t pk) {
    auto v = qk;
    const std::int32_t pos[2] = {pq, pk};
    rope_forward(v.data(), pos, 2, H, D);
    std::vector<double> s(H, 0.0);
    for (std::size_t h = 0; h < H; ++h)
      for (std::size_t d = 0; d < D; ++d) s[h] += v[h * D + d] * v[(H + h) * D + d];
    return s;
  };
  const auto base = scores(7, 3);
  for (const std::int32_t shift : {1, 100, 4000}) {
    const auto shifted = scores(7 + shift, 3 + shift);
    for (std::size_t h = 0; h < H; ++h) CHECK(shifted[h] == doctest::Approx(base[h]).epsilon(1e-11));
  }
  // A different distance gives a different score.
  const auto other = scores(8, 3);
  CHECK(std::abs(other[0] - base[0]) > 1e-3);
}

TEST_CASE("rope backward is the inverse rotation and matches finite differences") {
  const std::size_t N = 6, H = 2, D = 8;
  auto x = random_normal(N * H * D, 4);
  const auto w = random_normal(N * H * D, 5);
  const auto pos = positions(N, 11, 2);

  auto round_trip = x;
  rope_forward(round_trip.data(), pos.data(), N, H, D);
  rope_backward(round_trip.data(), pos.data(), N, H, D);
  for (std::size_t k = 0; k < x.size(); ++k) REQUIRE(round_trip[k] == doctest::Approx(x[k]).epsilon(1e-14));

  auto dx = w;  // in place: dy becomes dx
  rope_backward(dx.data(), pos.data(), N, H, D);
  std::vector<double> y(x.size());
  const auto r = check_gradient(x, dx, [&] {
    y = x;
    rope_forward(y.data(), pos.data(), N, H, D);
    return weighted_sum(y, w);
  });
  CHECK(r.max_error < 1e-6);
}

TEST_CASE("rope in float agrees with double, odd head dimensions are rejected") {
  // Angles, sines and cosines are computed in double in both; float adds the rounding of
  // cos and sin to float and of two products and a sum (~6e-8 each). Outputs x1 c - x2 s
  // cancel near 0, where the error stays absolute (~1e-7): compared with a floor of 0.1 at
  // tolerance 1e-5.
  const std::size_t N = 300, H = 4, D = 64;
  const auto xf = random_normal<float>(N * H * D, 6);
  std::vector<double> xd(xf.begin(), xf.end());
  auto yf = xf;
  const auto pos = positions(N, 17);  // up to position 5083
  rope_forward(yf.data(), pos.data(), N, H, D);
  rope_forward(xd.data(), pos.data(), N, H, D);
  CHECK(max_relative_difference(yf, xd, 0.1) < 1e-5);

  float z[6] = {};
  const std::int32_t p = 1;
  CHECK_THROWS_AS(rope_forward(z, &p, 1, 2, 3), rlxf::Error);
  CHECK_THROWS_AS(rope_backward(z, &p, 1, 2, 3), rlxf::Error);
}
