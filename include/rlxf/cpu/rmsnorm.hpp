#pragma once
// RMS normalisation on the CPU (Zhang & Sennrich, 2019), as in LLaMA:
//   y = x * rstd * gamma,  rstd = 1 / sqrt(mean(x^2) + eps)
// over the C channels of each row. Rows are independent and computed in parallel. The
// backward ADDS into dx and dgamma; dgamma is summed over rows in row order for each
// channel, whatever the thread count. Sums accumulate in double, as in layernorm.hpp.
// T is float or double.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>

#include "rlxf/core/threading.hpp"

namespace rlxf::cpu {

// x, y (N, C); gamma (C); rstd (N) is written for the backward.
template <class T>
void rmsnorm_forward(const T* x, const T* gamma, T* y, T* rstd, std::size_t N, std::size_t C,
                     T eps) {
  const double inv_c = 1.0 / static_cast<double>(C);
  parallel_for(N, [&](std::size_t i) {
    const T* xi = x + i * C;
    T* yi = y + i * C;
    double sq = 0;
    for (std::size_t c = 0; c < C; ++c) sq += static_cast<double>(xi[c]) * xi[c];
    const auto r = static_cast<T>(1.0 / std::sqrt(sq * inv_c + static_cast<double>(eps)));
    for (std::size_t c = 0; c < C; ++c) yi[c] = xi[c] * r * gamma[c];
    rstd[i] = r;
  }, min_parallel_tasks(C));
}

// With g = dy * gamma:
//   dx += rstd * (g - x * rstd^2 * mean_c(g * x)),  dgamma += sum_rows dy * x * rstd.
// dy, x, dx (N, C); gamma, dgamma (C); rstd (N) from the forward.
template <class T>
void rmsnorm_backward(const T* dy, const T* x, const T* gamma, const T* rstd, T* dx, T* dgamma,
                      std::size_t N, std::size_t C) {
  const double inv_c = 1.0 / static_cast<double>(C);
  parallel_for(N, [&](std::size_t i) {
    const T* dyi = dy + i * C;
    const T* xi = x + i * C;
    T* dxi = dx + i * C;
    double gx_sum = 0;
    for (std::size_t c = 0; c < C; ++c) gx_sum += dyi[c] * gamma[c] * xi[c];
    const T r = rstd[i];
    const auto scale = static_cast<T>(gx_sum * inv_c) * r * r;
    for (std::size_t c = 0; c < C; ++c) dxi[c] += r * (dyi[c] * gamma[c] - xi[c] * scale);
  }, min_parallel_tasks(C));
  // dgamma: threads own blocks of channels, sum the rows in row order into partials and add
  // each partial once.
  constexpr std::size_t block = 64;
  parallel_for((C + block - 1) / block, [&](std::size_t b) {
    const std::size_t c0 = b * block, width = std::min(block, C - c0);
    std::array<double, block> gamma_sum{};
    for (std::size_t i = 0; i < N; ++i) {
      const T* dyi = dy + i * C + c0;
      const T* xi = x + i * C + c0;
      for (std::size_t k = 0; k < width; ++k) gamma_sum[k] += dyi[k] * xi[k] * rstd[i];
    }
    for (std::size_t k = 0; k < width; ++k) dgamma[c0 + k] += static_cast<T>(gamma_sum[k]);
  }, min_parallel_tasks(block * N));
}

}  // namespace rlxf::cpu
