#pragma once
// What the CUDA GEMM kernels compute, in the BLAS convention over row-major storage:
//   C (M, N) = epilogue(alpha * op(A) op(B) + beta * C),   op(A) (M, K), op(B) (K, N),
// batched over grid.z with element strides between the batch's matrices. A is stored (M, K)
// with row stride lda >= K, or (K, M) with lda >= M when transposed; B (K, N), ldb >= N, or
// (N, K), ldb >= K; C (M, N), ldc >= N. Accumulation is f32 whatever the storage type. With
// beta == 0 C is only written (it may hold NaN). The epilogue adds bias[n] (f32, length N)
// and optionally applies GELU (tanh form, GPT-2's) before the one rounding to C's type.
//
// The transposition cases a linear layer y = x W^T (W stored (out, in)) needs:
//   forward dy = x W^T: NT;  input gradient dx = dy W: NN;  weight gradient dW = dy^T x: TN.
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/platform.hpp"

namespace rlxf::cuda {

enum class Epilogue : int { none, bias, bias_gelu };

template <class T, class TOut>
struct GemmParams {
  const T* a = nullptr;
  const T* b = nullptr;
  TOut* c = nullptr;
  const float* bias = nullptr;  // (N), read when epilogue != none
  int m = 0, n = 0, k = 0;
  long lda = 0, ldb = 0, ldc = 0;
  int batch = 1;
  long stride_a = 0, stride_b = 0, stride_c = 0;  // elements between a batch's matrices
  float alpha = 1.0f, beta = 0.0f;
  Epilogue epilogue = Epilogue::none;
};

// Refuses a GEMM the kernels cannot run, naming the argument (host side, before a launch).
template <class T, class TOut>
void check_gemm(const GemmParams<T, TOut>& p, bool trans_a, bool trans_b) {
  RLXF_REQUIRE(p.m >= 0 && p.n >= 0 && p.k >= 0, "GEMM sizes must be non-negative, got M = ", p.m,
               ", N = ", p.n, ", K = ", p.k);
  RLXF_REQUIRE(p.batch >= 1, "GEMM batch must be at least 1, got ", p.batch);
  const long a_cols = trans_a ? p.m : p.k, b_cols = trans_b ? p.k : p.n;
  RLXF_REQUIRE(p.lda >= a_cols, "lda = ", p.lda, " is smaller than the ", a_cols, " columns of A");
  RLXF_REQUIRE(p.ldb >= b_cols, "ldb = ", p.ldb, " is smaller than the ", b_cols, " columns of B");
  RLXF_REQUIRE(p.ldc >= p.n, "ldc = ", p.ldc, " is smaller than the ", p.n, " columns of C");
  RLXF_REQUIRE(p.epilogue == Epilogue::none || p.bias != nullptr,
               "the bias epilogue needs a bias vector of N = ", p.n, " floats");
  RLXF_REQUIRE(p.a != nullptr && p.b != nullptr && p.c != nullptr, "GEMM operands must not be null");
}

}  // namespace rlxf::cuda
