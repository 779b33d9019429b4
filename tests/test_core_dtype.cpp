#include <doctest/doctest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/rng.hpp"

using rlxf::bf16;
using rlxf::f16;

namespace {
// Independent reference for round-to-nearest-even into a format whose finite values are
// enumerated through `decode`: find the representable neighbours of x by bisection over the
// ordered non-negative bit patterns [0, max_finite], then pick the nearer (ties: even pattern).
template <class Decode>
std::uint16_t reference_round(float x, Decode decode, std::uint16_t max_finite, std::uint16_t inf) {
  const double ax = std::fabs(static_cast<double>(x));
  const auto sign = static_cast<std::uint16_t>(std::signbit(x) ? 0x8000u : 0u);
  const double max = decode(max_finite);
  // Overflow: values at or beyond max + ulp/2 round to infinity (ties to even go up since
  // max_finite has an odd mantissa).
  const double ulp_top = max - decode(static_cast<std::uint16_t>(max_finite - 1));
  if (ax >= max + ulp_top / 2) return static_cast<std::uint16_t>(sign | inf);
  std::uint32_t lo = 0, hi = max_finite;  // decode(lo) <= ax <= decode(hi)
  while (hi - lo > 1) {
    const std::uint32_t mid = (lo + hi) / 2;
    if (decode(static_cast<std::uint16_t>(mid)) <= ax) lo = mid; else hi = mid;
  }
  const double dl = ax - decode(static_cast<std::uint16_t>(lo));
  const double dh = decode(static_cast<std::uint16_t>(hi)) - ax;
  std::uint32_t pick = dl < dh ? lo : dh < dl ? hi : (lo % 2 == 0 ? lo : hi);
  if (dl == 0) pick = lo;
  return static_cast<std::uint16_t>(sign | pick);
}

double decode_f16(std::uint16_t b) {  // from the IEEE definition, in double
  const int e = (b >> 10) & 0x1f, m = b & 0x3ff;
  const double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return (b & 0x8000) ? -v : v;
}
double decode_bf16(std::uint16_t b) {
  const int e = (b >> 7) & 0xff, m = b & 0x7f;
  const double v = e == 0 ? std::ldexp(m, -133) : std::ldexp(128 + m, e - 134);
  return (b & 0x8000) ? -v : v;
}
}  // namespace

TEST_CASE("every f16 and bf16 value converts to float exactly and back unchanged") {
  for (std::uint32_t b = 0; b < 65536; ++b) {
    const auto bits = static_cast<std::uint16_t>(b);
    const f16 h = f16::from_bits(bits);
    const float fh = h.to_float();
    if (((b >> 10) & 0x1f) == 0x1f && (b & 0x3ff)) {
      REQUIRE(std::isnan(fh));
    } else {
      if (((b >> 10) & 0x1f) != 0x1f) REQUIRE(static_cast<double>(fh) == decode_f16(bits));
      REQUIRE(f16::from_float(fh).bits == bits);
    }
    const bf16 g = bf16::from_bits(bits);
    const float fg = g.to_float();
    if (((b >> 7) & 0xff) == 0xff && (b & 0x7f)) {
      REQUIRE(std::isnan(fg));
    } else {
      if (((b >> 7) & 0xff) != 0xff) REQUIRE(static_cast<double>(fg) == decode_bf16(bits));
      REQUIRE(bf16::from_float(fg).bits == bits);
    }
  }
}

TEST_CASE("float to f16 and bf16 rounds to nearest even, as a bisection reference does") {
  rlxf::Rng rng(2026);
  auto check_one = [](float x) {
    REQUIRE(f16::from_float(x).bits == reference_round(x, decode_f16, 0x7bff, 0x7c00));
    REQUIRE(bf16::from_float(x).bits == reference_round(x, decode_bf16, 0x7f7f, 0x7f80));
  };
  // Random bit patterns cover every exponent; skip NaN and inf.
  for (int i = 0; i < 200000; ++i) {
    const float x = std::bit_cast<float>(rng.next_bits());
    if (std::isfinite(x)) check_one(x);
  }
  // Exact ties and the edges: halfway points between neighbours, overflow and underflow.
  for (std::uint32_t b = 0; b < 0x7bff; b += 7) {
    const double mid = (decode_f16(static_cast<std::uint16_t>(b)) + decode_f16(static_cast<std::uint16_t>(b + 1))) / 2;
    check_one(static_cast<float>(mid));
  }
  for (float x : {65504.0f, 65519.99f, 65520.0f, 65536.0f, 0x1p-24f, 0x1p-25f, 0x1.0000002p-25f,
                  0x1p-26f, 0x1.8p-24f, 0x1.8p-23f, 3.3895314e38f, 3.4028235e38f, 1e-45f, -0.0f})
    check_one(x);
  CHECK(f16::from_float(65520.0f).bits == 0x7c00);
  CHECK(f16::from_float(0x1p-25f).bits == 0x0000);  // tie between 0 and 2^-24 goes to even 0
  CHECK(f16::from_float(0x1.8p-24f).bits == 0x0002);  // tie between 1 and 2 ulps goes to 2
  CHECK(bf16::from_float(1.00390625f).bits == 0x3f80);  // 1 + 2^-8: tie, even is 1.0
  CHECK(bf16::from_float(1.01171875f).bits == 0x3f82);  // 1 + 3*2^-8: tie, even is 1 + 2^-6
}

TEST_CASE("NaN stays NaN and infinities stay infinite") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(std::isnan(f16::from_float(nan).to_float()));
  CHECK(std::isnan(bf16::from_float(nan).to_float()));
  CHECK(std::isnan(bf16::from_float(std::bit_cast<float>(0x7f800001u)).to_float()));  // signalling
  CHECK(std::isnan(f16::from_float(std::bit_cast<float>(0x7f800001u)).to_float()));
  CHECK(f16::from_float(-inf).bits == 0xfc00);
  CHECK(bf16::from_float(inf).bits == 0x7f80);
}

TEST_CASE("rlxf::Error composes its context chain") {
  try {
    rlxf::with_context("loading model.safetensors", [] {
      rlxf::with_context("tensor 'wte'", [] { rlxf::fail("expected ", 12, " bytes, got ", 3); });
    });
    FAIL("no throw");
  } catch (const rlxf::Error& e) {
    CHECK(std::string(e.what()) == "loading model.safetensors: tensor 'wte': expected 12 bytes, got 3");
    CHECK(e.message() == "expected 12 bytes, got 3");
    CHECK(e.context().size() == 2);
  }
  CHECK_THROWS_WITH_AS(RLXF_REQUIRE(1 + 1 == 3, "arithmetic is broken"),
                       doctest::Contains("arithmetic is broken"), rlxf::Error);
}
