// GEMM throughput of cpu::gemm<float> on the matrix products of one GPT-2 small layer
// (C = 768) over B*T = 1024 tokens, forward and backward, as nn::Linear calls them: the
// weight W is stored (out, in) row-major (PyTorch's nn.Linear layout), so
//   forward         Y (BT, out)   = X (BT, in) W^T                gemm(no,  yes)
//   backward input  dX (BT, in)   = dY (BT, out) W (out, in)      gemm(no,  no)
//   backward weight dW (out, in) += dY^T (out, BT) X (BT, in)     gemm(yes, no),  beta = 1
// plus a reference: Eigen's own 1024 x 1024 MatrixXf product (column-major, Eigen's threading).
// Reported as GFLOP/s of wall-clock time, 2 M N K flops per product.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <Eigen/Core>
#include <benchmark/benchmark.h>

#include "rlxf/core/rng.hpp"
#include "rlxf/cpu/gemm.hpp"

namespace {

using rlxf::cpu::gemm;
using rlxf::cpu::Trans;

constexpr std::size_t tokens = 1024;  // B * T

std::vector<float> random_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::vector<float> m(rows * cols);
  rlxf::Rng(seed).fill_uniform(std::span<float>(m), -1.0, 1.0);
  return m;
}

void set_flops(benchmark::State& state, std::size_t M, std::size_t N, std::size_t K) {
  const double flops = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K);
  state.counters["GFLOP"] = benchmark::Counter(flops * 1e-9 * static_cast<double>(state.iterations()),
                                               benchmark::Counter::kIsRate);
}

// Y (tokens, out) = X (tokens, in) W^T, W stored (out, in).
void linear_forward(benchmark::State& state, std::size_t in, std::size_t out) {
  const auto X = random_matrix(tokens, in, 1), W = random_matrix(out, in, 2);
  std::vector<float> Y(tokens * out);
  for (auto _ : state) {
    gemm(Trans::no, Trans::yes, tokens, out, in, 1.0f, X.data(), in, W.data(), in, 0.0f, Y.data(), out);
    benchmark::DoNotOptimize(Y.data());
  }
  set_flops(state, tokens, out, in);
}

// dX (tokens, in) = dY (tokens, out) W, W stored (out, in).
void linear_backward_input(benchmark::State& state, std::size_t in, std::size_t out) {
  const auto dY = random_matrix(tokens, out, 3), W = random_matrix(out, in, 2);
  std::vector<float> dX(tokens * in, 0.0f);
  for (auto _ : state) {
    gemm(Trans::no, Trans::no, tokens, in, out, 1.0f, dY.data(), out, W.data(), in, 0.0f, dX.data(), in);
    benchmark::DoNotOptimize(dX.data());
  }
  set_flops(state, tokens, in, out);
}

// dW (out, in) += dY^T X, X stored (tokens, in), dY (tokens, out).
void linear_backward_weight(benchmark::State& state, std::size_t in, std::size_t out) {
  const auto X = random_matrix(tokens, in, 1), dY = random_matrix(tokens, out, 3);
  std::vector<float> dW(out * in, 0.0f);
  for (auto _ : state) {
    gemm(Trans::yes, Trans::no, out, in, tokens, 1.0f, dY.data(), out, X.data(), in, 1.0f, dW.data(), in);
    benchmark::DoNotOptimize(dW.data());
  }
  set_flops(state, out, in, tokens);
}

// Eigen's own product of two square column-major matrices: what Eigen reaches on its home turf.
void eigen_square_peak(benchmark::State& state) {
  const Eigen::Index n = 1024;
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(n, n), b = Eigen::MatrixXf::Random(n, n);
  Eigen::MatrixXf c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, 1024, 1024, 1024);
}

}  // namespace

// clang-format off
BENCHMARK_CAPTURE(linear_forward, attn_qkv_768x2304, 768, 2304)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(linear_forward, attn_proj_768x768, 768, 768)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(linear_forward, mlp_fc_768x3072, 768, 3072)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(linear_forward, mlp_proj_3072x768, 3072, 768)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(linear_backward_input, attn_qkv_768x2304, 768, 2304)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(linear_backward_input, attn_proj_768x768, 768, 768)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(linear_backward_input, mlp_fc_768x3072, 768, 3072)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(linear_backward_input, mlp_proj_3072x768, 3072, 768)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(linear_backward_weight, attn_qkv_768x2304, 768, 2304)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(linear_backward_weight, attn_proj_768x768, 768, 768)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(linear_backward_weight, mlp_fc_768x3072, 768, 3072)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(linear_backward_weight, mlp_proj_3072x768, 3072, 768)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(eigen_square_peak)->Unit(benchmark::kMillisecond)->UseRealTime();
// clang-format on

BENCHMARK_MAIN();
