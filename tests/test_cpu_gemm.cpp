#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "gradcheck.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/core/threading.hpp"
#include "rlxf/cpu/gemm.hpp"

using rlxf::cpu::gemm;
using rlxf::cpu::Trans;

namespace {

struct Shape {
  std::size_t M, N, K;
};

// 1x1, vectors, odd sizes, and sizes above detail::gemm_min_parallel_work, which take the
// tiled, threaded path (one tile, several, partial ones).
constexpr Shape shapes[] = {{1, 1, 1},  {1, 9, 4},    {8, 1, 3},    {2, 3, 1},    {7, 13, 5},
                            {16, 16, 16}, {33, 65, 17}, {64, 48, 80}, {5, 130, 37}, {40, 300, 20},
                            {130, 97, 260}};

// Integers in [-4, 4]; products and sums stay far below 2^24, so every result is exact in
// float as in double and the comparison with the reference can be ==.
template <class T>
std::vector<T> small_integers(std::size_t n, rlxf::Rng& rng) {
  std::vector<T> v(n);
  for (auto& e : v) e = static_cast<T>(static_cast<int>(rng.next_below(9)) - 4);
  return v;
}

// Stored element (r, c) of op(X) when X is stored with row stride ld.
template <class T>
T op_at(const std::vector<T>& X, std::size_t ld, Trans t, std::size_t r, std::size_t c) {
  return t == Trans::no ? X[r * ld + c] : X[c * ld + r];
}

// Runs one case of gemm against a naive triple loop in double. `pad` extra columns in every
// stored matrix; with nan_c, C starts as NaN (only sensible with beta == 0). The padding of C
// must come back untouched.
template <class T>
void check_case(Trans ta, Trans tb, Shape s, std::size_t pad, T alpha, T beta, bool nan_c,
                rlxf::Rng& rng) {
  CAPTURE(s.M);
  CAPTURE(s.N);
  CAPTURE(s.K);
  CAPTURE(pad);
  CAPTURE(static_cast<bool>(ta));
  CAPTURE(static_cast<bool>(tb));
  const std::size_t a_rows = ta == Trans::no ? s.M : s.K, a_cols = ta == Trans::no ? s.K : s.M;
  const std::size_t b_rows = tb == Trans::no ? s.K : s.N, b_cols = tb == Trans::no ? s.N : s.K;
  const std::size_t lda = a_cols + pad, ldb = b_cols + pad, ldc = s.N + pad;
  const auto A = small_integers<T>(a_rows * lda, rng);
  const auto B = small_integers<T>(b_rows * ldb, rng);
  auto C = small_integers<T>(s.M * ldc, rng);
  if (nan_c)
    for (auto& e : C) e = std::numeric_limits<T>::quiet_NaN();
  const auto C0 = C;

  gemm(ta, tb, s.M, s.N, s.K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);

  bool any_nonzero = false;
  for (std::size_t i = 0; i < s.M; ++i) {
    for (std::size_t j = 0; j < s.N; ++j) {
      double acc = 0;
      for (std::size_t k = 0; k < s.K; ++k)
        acc += static_cast<double>(op_at(A, lda, ta, i, k)) * static_cast<double>(op_at(B, ldb, tb, k, j));
      double ref = static_cast<double>(alpha) * acc;
      if (beta != T(0)) ref += static_cast<double>(beta) * static_cast<double>(C0[i * ldc + j]);
      any_nonzero = any_nonzero || acc != 0;
      REQUIRE(static_cast<double>(C[i * ldc + j]) == ref);
    }
    for (std::size_t j = s.N; j < ldc; ++j) {  // padding untouched (NaN compares by bits)
      const T before = C0[i * ldc + j], after = C[i * ldc + j];
      REQUIRE((after == before || (std::isnan(after) && std::isnan(before))));
    }
  }
  if (s.K > 0 && s.M * s.N > 1) CHECK(any_nonzero);  // the inputs exercised the product
}

template <class T>
void check_all_cases() {
  rlxf::Rng rng(11, 3);
  for (const Trans ta : {Trans::no, Trans::yes})
    for (const Trans tb : {Trans::no, Trans::yes})
      for (const Shape s : shapes)
        for (const std::size_t pad : {std::size_t{0}, std::size_t{3}}) {
          check_case<T>(ta, tb, s, pad, T(1), T(0), true, rng);    // plain product into NaN
          check_case<T>(ta, tb, s, pad, T(2), T(0), true, rng);    // alpha, beta == 0
          check_case<T>(ta, tb, s, pad, T(-1), T(1), false, rng);  // accumulate
          check_case<T>(ta, tb, s, pad, T(0.5), T(-3), false, rng);
        }
}

}  // namespace

TEST_CASE_TEMPLATE("gemm matches a naive triple loop exactly in every transposition case", T,
                   float, double) {
  check_all_cases<T>();
}

TEST_CASE_TEMPLATE("gemm with K == 0 scales C by beta, empty M or N touch nothing", T, float,
                   double) {
  rlxf::Rng rng(5);
  for (const Trans ta : {Trans::no, Trans::yes})
    for (const Trans tb : {Trans::no, Trans::yes}) {
      check_case<T>(ta, tb, {4, 6, 0}, 2, T(3), T(0), true, rng);  // C = 0, NaN overwritten
      check_case<T>(ta, tb, {4, 6, 0}, 0, T(3), T(-2), false, rng);
      check_case<T>(ta, tb, {4, 6, 0}, 1, T(3), T(1), false, rng);
    }
  std::vector<T> a(8, T(1)), b(8, T(1)), c(8, T(7));
  gemm(Trans::no, Trans::no, 0, 4, 2, T(1), a.data(), 2, b.data(), 4, T(0), c.data(), 4);
  gemm(Trans::no, Trans::no, 4, 0, 2, T(1), a.data(), 2, b.data(), 0, T(0), c.data(), 0);
  for (const T v : c) CHECK(v == T(7));
}

TEST_CASE("gemm rejects leading dimensions smaller than the stored rows") {
  std::vector<float> a(64, 1.0f), b(64, 1.0f), c(64, 0.0f);
  // A stored (3, 4) needs lda >= 4; transposed it is stored (4, 3) and needs lda >= 3.
  CHECK_THROWS_AS(gemm(Trans::no, Trans::no, std::size_t{3}, std::size_t{2}, std::size_t{4}, 1.0f,
                       a.data(), 3, b.data(), 2, 0.0f, c.data(), 2),
                  rlxf::Error);
  CHECK_NOTHROW(gemm(Trans::yes, Trans::no, std::size_t{3}, std::size_t{2}, std::size_t{4}, 1.0f,
                     a.data(), 3, b.data(), 2, 0.0f, c.data(), 2));
  CHECK_THROWS_AS(gemm(Trans::no, Trans::yes, std::size_t{3}, std::size_t{2}, std::size_t{4}, 1.0f,
                       a.data(), 4, b.data(), 3, 0.0f, c.data(), 2),
                  rlxf::Error);
  CHECK_THROWS_AS(gemm(Trans::no, Trans::no, std::size_t{3}, std::size_t{2}, std::size_t{4}, 1.0f,
                       a.data(), 4, b.data(), 2, 0.0f, c.data(), 1),
                  rlxf::Error);
}

TEST_CASE("gemm in float gives the same bits whatever the thread count") {
  // K = 768 is blocked by Eigen's kernel; its own threading would block it differently from
  // one thread to several. (100, 100) is a single tile of C, (200, 150) several.
  const int saved = rlxf::max_threads();
  for (const Shape s : {Shape{200, 150, 768}, Shape{100, 100, 768}}) {
    CAPTURE(s.M);
    const auto A = rlxf::test::random_normal<float>(s.M * s.K, 1);
    const auto B = rlxf::test::random_normal<float>(s.N * s.K, 2);
    std::vector<float> one(s.M * s.N), many(s.M * s.N);
    rlxf::set_threads(1);
    gemm(Trans::no, Trans::yes, s.M, s.N, s.K, 1.0f, A.data(), s.K, B.data(), s.K, 0.0f, one.data(), s.N);
    rlxf::set_threads(std::max(saved, 2));
    gemm(Trans::no, Trans::yes, s.M, s.N, s.K, 1.0f, A.data(), s.K, B.data(), s.K, 0.0f, many.data(), s.N);
    CHECK(one == many);
  }
  rlxf::set_threads(saved);
}
