#pragma once
// General matrix product on the CPU through Eigen, over row-major buffers with explicit
// leading dimensions (the row stride as stored), in the BLAS calling convention.
//
// Threads: C is cut into fixed tiles (fixed by the shape alone) and each tile is one
// single-threaded Eigen product, the tiles spread over rlxf::parallel_for. Eigen's own
// threading is not used because it changes the blocking of the K dimension (and so the
// rounding of float sums) between one thread and several; with fixed tiles the result is the
// same bits whatever the thread count.
#include <algorithm>
#include <cstddef>

#include <Eigen/Core>

#include "rlxf/core/error.hpp"
#include "rlxf/core/threading.hpp"

namespace rlxf::cpu {

namespace detail {
// Side of the square tiles of C. Each tile repacks its rows of op(A) and columns of op(B), an
// overhead of about 1/128 of the tile's arithmetic.
inline constexpr std::size_t gemm_tile = 128;
// Products with fewer multiply-adds run as one Eigen call in the calling thread. Eigen threads
// nothing below 2 * 50000 multiply-adds (kMinTaskSize in Eigen/src/Core/products/Parallelizer.h),
// so such a call is single-threaded as the tiles are.
inline constexpr double gemm_min_parallel_work = 1e5;
}  // namespace detail

// Whether an operand enters the product transposed.
enum class Trans : bool { no = false, yes = true };

// C (M, N) = alpha * op(A) * op(B) + beta * C, where op(A) is (M, K) and op(B) is (K, N).
// A is stored (M, K) with row stride lda >= K when ta == no, and (K, M) with lda >= M when
// ta == yes; likewise B is stored (K, N), ldb >= N, or (N, K), ldb >= K; C is (M, N),
// ldc >= N. With beta == 0, C is only written (it may hold garbage, NaN included). K == 0
// gives C = beta * C. T is float or double.
template <class T>
void gemm(Trans ta, Trans tb, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
          std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  using Index = Eigen::Index;
  const std::size_t a_rows = ta == Trans::no ? M : K, a_cols = ta == Trans::no ? K : M;
  const std::size_t b_rows = tb == Trans::no ? K : N, b_cols = tb == Trans::no ? N : K;
  RLXF_REQUIRE(lda >= a_cols, "lda = ", lda, " is smaller than the ", a_cols, " columns of A");
  RLXF_REQUIRE(ldb >= b_cols, "ldb = ", ldb, " is smaller than the ", b_cols, " columns of B");
  RLXF_REQUIRE(ldc >= N, "ldc = ", ldc, " is smaller than the ", N, " columns of C");
  if (M == 0 || N == 0) return;

  Eigen::Map<Matrix, Eigen::Unaligned, Stride> c(C, static_cast<Index>(M), static_cast<Index>(N),
                                                 Stride(static_cast<Index>(ldc)));
  if (K == 0) {
    if (beta == T(0)) c.setZero();
    else c *= beta;
    return;
  }
  const Eigen::Map<const Matrix, Eigen::Unaligned, Stride> a(
      A, static_cast<Index>(a_rows), static_cast<Index>(a_cols), Stride(static_cast<Index>(lda)));
  const Eigen::Map<const Matrix, Eigen::Unaligned, Stride> b(
      B, static_cast<Index>(b_rows), static_cast<Index>(b_cols), Stride(static_cast<Index>(ldb)));

  // Eigen folds alpha into its GEMM kernel; assigning a product (beta == 0) never reads C.
  const auto multiply = [&](auto&& c_out, const auto& op_a, const auto& op_b) {
    if (beta == T(0)) {
      c_out.noalias() = alpha * op_a * op_b;
    } else {
      if (beta != T(1)) c_out *= beta;
      c_out.noalias() += alpha * op_a * op_b;
    }
  };
  // C[i0 : i0 + mb, j0 : j0 + nb] from rows i0.. of op(A) and columns j0.. of op(B). Blocks are
  // taken of the stored matrices and then transposed, so Eigen sees plain strided operands.
  const auto tile_product = [&](Index i0, Index mb, Index j0, Index nb) {
    auto c_tile = c.block(i0, j0, mb, nb);
    if (ta == Trans::no && tb == Trans::no)
      multiply(c_tile, a.middleRows(i0, mb), b.middleCols(j0, nb));
    else if (ta == Trans::no)
      multiply(c_tile, a.middleRows(i0, mb), b.middleRows(j0, nb).transpose());
    else if (tb == Trans::no)
      multiply(c_tile, a.middleCols(i0, mb).transpose(), b.middleCols(j0, nb));
    else
      multiply(c_tile, a.middleCols(i0, mb).transpose(), b.middleRows(j0, nb).transpose());
  };

  const double work = static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  if (work < detail::gemm_min_parallel_work) {
    tile_product(0, static_cast<Index>(M), 0, static_cast<Index>(N));
    return;
  }
  // Even a single tile goes through parallel_for (min_parallel = 1): inside the parallel region
  // Eigen stays single-threaded.
  constexpr std::size_t tile = detail::gemm_tile;
  const std::size_t tiles_m = (M + tile - 1) / tile, tiles_n = (N + tile - 1) / tile;
  parallel_for(tiles_m * tiles_n, [&](std::size_t t) {
    const std::size_t i0 = (t / tiles_n) * tile, j0 = (t % tiles_n) * tile;
    tile_product(static_cast<Index>(i0), static_cast<Index>(std::min(tile, M - i0)),
                 static_cast<Index>(j0), static_cast<Index>(std::min(tile, N - j0)));
  }, 1);
}

}  // namespace rlxf::cpu
