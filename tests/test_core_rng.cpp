#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "rlxf/core/rng.hpp"

using rlxf::Philox4x32;

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors") {
  // kat_vectors of Random123 (philox4x32 10 rounds): counter, key -> output.
  CHECK(Philox4x32::block({0, 0, 0, 0}, {0, 0}) ==
        Philox4x32::Counter{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  CHECK(Philox4x32::block({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                          {0xffffffffu, 0xffffffffu}) ==
        Philox4x32::Counter{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  CHECK(Philox4x32::block({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                          {0xa4093822u, 0x299f31d0u}) ==
        Philox4x32::Counter{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("a parallel fill gives the same numbers whatever the thread count") {
  std::vector<float> one(10007), many(10007);
  rlxf::set_threads(1);
  rlxf::Rng(42, 7).fill_normal(std::span<float>(one));
  rlxf::set_threads(4);
  rlxf::Rng(42, 7).fill_normal(std::span<float>(many));
  rlxf::set_threads(0);
  CHECK(one == many);
  // and they equal the sequential draws
  rlxf::Rng seq(42, 7);
  for (std::size_t i = 0; i < one.size(); ++i) REQUIRE(one[i] == static_cast<float>(seq.next_normal()));
}

TEST_CASE("uniforms and normals have the right moments") {
  rlxf::Rng rng(1234);
  const std::size_t n = 200000;
  std::vector<double> u(n), z(n);
  rng.fill_uniform(std::span<double>(u));
  rng.fill_normal(std::span<double>(z));
  double mu = 0, mz = 0, vz = 0, kz = 0;
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(u[i] >= 0.0);
    REQUIRE(u[i] < 1.0);
    mu += u[i];
    mz += z[i];
  }
  mu /= n;
  mz /= n;
  for (double x : z) {
    vz += (x - mz) * (x - mz);
    kz += std::pow(x - mz, 4);
  }
  vz /= n;
  kz /= n * vz * vz;
  // Standard errors: uniform mean 1/sqrt(12 n) ~ 6.5e-4; normal mean 2.2e-3, variance 3.2e-3.
  CHECK(mu == doctest::Approx(0.5).epsilon(0.004));
  CHECK(std::abs(mz) < 0.01);
  CHECK(vz == doctest::Approx(1.0).epsilon(0.015));
  CHECK(kz == doctest::Approx(3.0).epsilon(0.05));
}

TEST_CASE("streams, splits and offsets") {
  rlxf::Rng a(5, 0), b(5, 1);
  CHECK(a.bits(0) != b.bits(0));
  CHECK(a.split(1).stream() != a.split(2).stream());
  CHECK(a.split(1).bits(3) == rlxf::Rng(5, 0).split(1).bits(3));
  // Resuming from a saved offset continues the sequence.
  rlxf::Rng r(9);
  for (int i = 0; i < 13; ++i) r.next_bits();
  rlxf::Rng resumed(r.seed(), r.stream(), r.offset());
  CHECK(r.next_bits() == resumed.next_bits());
  // next_below stays in range and hits every value.
  std::vector<int> seen(7, 0);
  for (int i = 0; i < 700; ++i) ++seen[r.next_below(7)];
  for (int c : seen) CHECK(c > 50);
}
