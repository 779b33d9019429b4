#pragma once
// Test support for bf16 results: rounding, the unit in the last place, and random inputs
// that every backend reads exactly (already bf16 values).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "rlxf/core/dtype.hpp"

namespace rlxf::test {

inline float round_bf16(float x) { return bf16::from_float(x).to_float(); }

// One unit in the last place of a bf16 number of magnitude |r| (8 significant bits).
inline double ulp_bf16(double r) {
  if (r == 0) return 0;
  int e;
  std::frexp(r, &e);  // |r| in [2^(e-1), 2^e)
  return std::ldexp(1.0, e - 8);
}

// n values offset + scale N(0, 1), rounded to bf16 so that every backend reads the same.
inline std::vector<float> random_bf16_floats(std::size_t n, std::uint32_t seed, float scale = 1.0f,
                                             float offset = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> v(n);
  for (auto& x : v) x = round_bf16(offset + scale * normal(rng));
  return v;
}

}  // namespace rlxf::test
