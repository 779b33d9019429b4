// The CUDA GEMM kernels (tensor-core WMMA for f16/bf16, SIMT for f32) run under the CPU
// emulator against a double-precision host product, for every shipped tile configuration,
// every transposition case and ten shapes, most of them not multiples of any tile.
//
// Tolerance by construction (CUTLASS's rule): inputs are small integers, so every product
// and partial sum is an integer below 2^24 and the f32 accumulation is exact; alpha = 0.5,
// beta = 0.25 and integer C keep the epilogue exact too. The kernel's C must then equal the
// exact result rounded once to C's type, bit for bit. Only GELU, a transcendental, is
// compared with a tolerance (a few f32 ulps before the rounding to C's type).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "rlxf/core/dtype.hpp"
#include "rlxf/cuda/emulate/launch.hpp"
#include "rlxf/cuda/gemm/dispatch.hpp"

using namespace rlxf;
using namespace rlxf::cuda;

namespace {

struct Shape {
  int m, n, k;
};
// Ten shapes: tiny, exact tiles, ragged in every dimension, K shorter and longer than
// block_k, one output spanning several CTAs both ways.
const Shape shapes[] = {{1, 1, 1},    {16, 16, 16},  {17, 33, 9},  {64, 64, 64},  {100, 70, 50},
                        {128, 128, 32}, {129, 65, 40}, {33, 150, 17}, {70, 20, 100}, {5, 130, 77}};

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
// A small integer in [-3, 3] from a seed and an index.
float small_int(std::uint64_t seed, std::size_t i) { return float(int(mix(seed * 7919 + i) % 7) - 3); }

template <class T>
T cast(float v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else return T::from_float(v);
}
template <class T>
double value(T v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else return double(v.to_float());
}
double gelu_reference(double x) {
  const double u = std::sqrt(2.0 / 3.141592653589793) * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + std::tanh(u));
}

// The tolerance on C for the GELU epilogue: a few f32 ulps of the result, then half an ulp
// of C's type for its rounding.
template <class TOut>
double gelu_tolerance(double v) {
  const double type_ulp = std::is_same_v<TOut, float> ? 0x1p-23 : std::is_same_v<TOut, f16> ? 0x1p-10 : 0x1p-7;
  return std::abs(v) * (8 * 0x1p-23 + type_ulp) + 1e-6;
}

// One GEMM of `shape` through Kernel under the emulator, checked element by element.
template <class Kernel, class T, class TOut>
void check_gemm_case(bool ta, bool tb, Shape s, Epilogue epilogue, int batch, std::uint64_t seed,
                     const emulate::Options& options) {
  const int m = s.m, n = s.n, k = s.k;
  // Leading dimensions: tight on even seeds (128-bit vector loads), padded by 3 on odd ones
  // (the element-wise fallback).
  const int extra = seed % 2 ? 3 : 0;
  const long lda = (ta ? m : k) + extra, ldb = (tb ? k : n) + extra, ldc = n + 2;
  const long a_rows = ta ? k : m, b_rows = tb ? n : k;
  const long stride_a = a_rows * lda, stride_b = b_rows * ldb, stride_c = long(m) * ldc;
  std::vector<T> a(std::size_t(stride_a * batch)), b(std::size_t(stride_b * batch));
  std::vector<TOut> c(std::size_t(stride_c * batch));
  std::vector<float> bias(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = cast<T>(small_int(seed, i));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = cast<T>(small_int(seed + 1, i));
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = cast<TOut>(small_int(seed + 2, i));
  for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = small_int(seed + 3, i);
  const std::vector<TOut> c_before = c;

  GemmParams<T, TOut> p;
  p.a = a.data(), p.b = b.data(), p.c = c.data(), p.bias = bias.data();
  p.m = m, p.n = n, p.k = k, p.lda = lda, p.ldb = ldb, p.ldc = ldc;
  p.batch = batch, p.stride_a = stride_a, p.stride_b = stride_b, p.stride_c = stride_c;
  p.alpha = 0.5f, p.beta = 0.25f, p.epilogue = epilogue;
  check_gemm(p, ta, tb);
  emulate::launch<Kernel>(Kernel::launch_config(p), p, options);

  long wrong = 0;
  for (int z = 0; z < batch; ++z)
    for (int i = 0; i < m; ++i)
      for (long j = 0; j < ldc; ++j) {
        const std::size_t at = std::size_t(z * stride_c + i * ldc + j);
        if (j >= n) {  // padding columns of C: never written
          wrong += value(c[at]) != value(c_before[at]);
          continue;
        }
        double acc = 0;
        for (int kk = 0; kk < k; ++kk) {
          const double av = value(a[std::size_t(z * stride_a + (ta ? kk * lda + i : i * lda + kk))]);
          const double bv = value(b[std::size_t(z * stride_b + (tb ? j * ldb + kk : kk * ldb + j))]);
          acc += av * bv;
        }
        double v = 0.5 * acc + 0.25 * value(c_before[at]);
        if (epilogue != Epilogue::none) v += bias[std::size_t(j)];
        if (epilogue == Epilogue::bias_gelu) {
          const double g = gelu_reference(v);
          wrong += !(std::abs(value(c[at]) - g) <= gelu_tolerance<TOut>(g));
        } else {
          wrong += value(c[at]) != value(cast<TOut>(float(v)));  // exact v, rounded once
        }
      }
  INFO("M = ", m, ", N = ", n, ", K = ", k, ", trans_a = ", ta, ", trans_b = ", tb, ", batch = ", batch,
       ", epilogue = ", int(epilogue), ", ld padding = ", extra);
  CHECK(wrong == 0);
}

template <template <bool, bool> class Kernel, class T, class TOut>
void check_all_cases(const emulate::Options& options) {
  std::uint64_t seed = 0;
  for (const Shape& s : shapes) {
    ++seed;
    check_gemm_case<Kernel<false, false>, T, TOut>(false, false, s, Epilogue::none, 1, seed, options);
    check_gemm_case<Kernel<false, true>, T, TOut>(false, true, s, Epilogue::bias, 1, seed, options);
    check_gemm_case<Kernel<true, false>, T, TOut>(true, false, s, Epilogue::none, 1, seed, options);
    check_gemm_case<Kernel<true, true>, T, TOut>(true, true, s, Epilogue::bias, 1, seed, options);
  }
  // Batched, and the GELU epilogue, on one ragged shape.
  check_gemm_case<Kernel<false, true>, T, TOut>(false, true, {37, 45, 29}, Epilogue::bias_gelu, 3, 99, options);
}

template <class Tile, class T, class TOut>
using Wmma = gemm_detail::WmmaFamily<Tile, T, TOut>;
template <class Tile>
using Simt = gemm_detail::SimtFamily<Tile>;

const emulate::Options natural{.fragments = emulate::FragmentLayout::natural};
const emulate::Options permuted{.fragments = emulate::FragmentLayout::permuted, .seed = 12345};

}  // namespace

TEST_CASE("WMMA GEMM, large tiles, f16 in and out, both fragment layouts") {
  check_all_cases<Wmma<gemm_tiles::WmmaLarge, f16, f16>::template kernel, f16, f16>(natural);
  check_all_cases<Wmma<gemm_tiles::WmmaLarge, f16, f16>::template kernel, f16, f16>(permuted);
}

TEST_CASE("WMMA GEMM, large tiles, bf16 in, f32 out, both fragment layouts") {
  check_all_cases<Wmma<gemm_tiles::WmmaLarge, bf16, float>::template kernel, bf16, float>(natural);
  check_all_cases<Wmma<gemm_tiles::WmmaLarge, bf16, float>::template kernel, bf16, float>(permuted);
}

TEST_CASE("WMMA GEMM, small tiles, bf16 in and out, both fragment layouts") {
  check_all_cases<Wmma<gemm_tiles::WmmaSmall, bf16, bf16>::template kernel, bf16, bf16>(natural);
  check_all_cases<Wmma<gemm_tiles::WmmaSmall, bf16, bf16>::template kernel, bf16, bf16>(permuted);
}

TEST_CASE("WMMA GEMM, small tiles, f16 in, f32 out, both fragment layouts") {
  check_all_cases<Wmma<gemm_tiles::WmmaSmall, f16, float>::template kernel, f16, float>(natural);
  check_all_cases<Wmma<gemm_tiles::WmmaSmall, f16, float>::template kernel, f16, float>(permuted);
}

TEST_CASE("SIMT f32 GEMM, large and small tiles") {
  check_all_cases<Simt<gemm_tiles::SimtLarge>::template kernel, float, float>(natural);
  check_all_cases<Simt<gemm_tiles::SimtSmall>::template kernel, float, float>(natural);
}

TEST_CASE("the GEMM kernels' launch checks refuse bad arguments by name") {
  std::vector<float> x(64);
  GemmParams<float, float> p;
  p.a = p.b = x.data(), p.c = x.data(), p.m = 4, p.n = 4, p.k = 4, p.lda = 3, p.ldb = 4, p.ldc = 4;
  CHECK_THROWS_WITH(check_gemm(p, false, false), doctest::Contains("lda = 3"));
  p.lda = 4;
  p.epilogue = Epilogue::bias;
  CHECK_THROWS_WITH(check_gemm(p, false, false), doctest::Contains("bias"));
  p.epilogue = Epilogue::none;
  CHECK_NOTHROW(check_gemm(p, false, false));
  p.ldc = 3;
  CHECK_THROWS_WITH(check_gemm(p, true, true), doctest::Contains("ldc = 3"));
}

TEST_CASE("dispatch_gemm picks large tiles for a full wave, small ones otherwise, and runs them") {
  // 256 x 256 is 4 large tiles: large on a GPU of 4 SMs, small (16 tiles) on one of 108.
  CHECK(gemm_tiles::use_large_tiles(256, 256, 1, 4));
  CHECK_FALSE(gemm_tiles::use_large_tiles(256, 256, 1, 108));
  CHECK(gemm_tiles::use_large_tiles(256, 256, 27, 108));  // the batch fills the GPU
  const int m = 70, n = 45, k = 33;
  std::vector<bf16> a(std::size_t(k * m)), b(std::size_t(k * n));
  for (std::size_t i = 0; i < a.size(); ++i) a[i] = bf16::from_float(small_int(5, i));
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = bf16::from_float(small_int(6, i));
  for (const int sm_count : {1, 108}) {
    std::vector<float> c(std::size_t(m * n), -1.0f);
    GemmParams<bf16, float> p;
    p.a = a.data(), p.b = b.data(), p.c = c.data(), p.m = m, p.n = n, p.k = k, p.lda = m, p.ldb = k, p.ldc = n;
    dispatch_gemm(emulate::Launcher{permuted}, true, true, p, sm_count);  // C = A^T B^T
    long wrong = 0;
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double ref = 0;
        for (int kk = 0; kk < k; ++kk) ref += double(a[std::size_t(kk * m + i)].to_float()) * b[std::size_t(j * k + kk)].to_float();
        wrong += c[std::size_t(i * n + j)] != float(ref);
      }
    INFO("sm_count = ", sm_count);
    CHECK(wrong == 0);
  }
}
