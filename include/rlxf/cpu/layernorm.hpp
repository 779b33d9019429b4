#pragma once
// Layer normalisation on the CPU (Ba et al., 2016), as in GPT-2 and BERT:
//   y = (x - mean) * rstd * gamma + beta,  rstd = 1 / sqrt(var + eps),
// with mean and biased variance over the C channels of each row. Rows are independent and
// computed in parallel. The backward ADDS into dx, dgamma and dbeta; the parameter gradients
// are summed over rows in row order for each channel, whatever the thread count.
// Sums accumulate in double: a strictly ordered sum is bound by the add latency, which is
// the same in float and double, and float sums over C = 768 channels would otherwise lose
// ~1e-6 relative. T is float or double.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>

#include "rlxf/core/threading.hpp"

namespace rlxf::cpu {

// x, y (N, C); gamma, beta (C), beta may be nullptr (no bias); mean, rstd (N) are written
// for the backward.
template <class T>
void layernorm_forward(const T* x, const T* gamma, const T* beta, T* y, T* mean, T* rstd,
                       std::size_t N, std::size_t C, T eps) {
  const double inv_c = 1.0 / static_cast<double>(C);
  parallel_for(N, [&](std::size_t i) {
    const T* xi = x + i * C;
    T* yi = y + i * C;
    double sum = 0;
    for (std::size_t c = 0; c < C; ++c) sum += xi[c];
    const double m = sum * inv_c;
    double sq = 0;  // two passes: no cancellation when |mean| >> std
    for (std::size_t c = 0; c < C; ++c) sq += (xi[c] - m) * (xi[c] - m);
    const auto r = static_cast<T>(1.0 / std::sqrt(sq * inv_c + static_cast<double>(eps)));
    const auto mt = static_cast<T>(m);
    for (std::size_t c = 0; c < C; ++c)
      yi[c] = (xi[c] - mt) * r * gamma[c] + (beta ? beta[c] : T(0));
    mean[i] = mt;
    rstd[i] = r;
  }, min_parallel_tasks(C));
}

// With xhat = (x - mean) * rstd and g = dy * gamma:
//   dx += rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)),
//   dgamma += sum_rows dy * xhat,  dbeta += sum_rows dy.
// dy, x, dx (N, C); gamma, dgamma, dbeta (C), dbeta may be nullptr; mean, rstd (N) from the
// forward.
template <class T>
void layernorm_backward(const T* dy, const T* x, const T* gamma, const T* mean, const T* rstd,
                        T* dx, T* dgamma, T* dbeta, std::size_t N, std::size_t C) {
  const double inv_c = 1.0 / static_cast<double>(C);
  parallel_for(N, [&](std::size_t i) {
    const T* dyi = dy + i * C;
    const T* xi = x + i * C;
    T* dxi = dx + i * C;
    double g_sum = 0, gx_sum = 0;
    for (std::size_t c = 0; c < C; ++c) {
      const T g = dyi[c] * gamma[c];
      g_sum += g;
      gx_sum += g * (xi[c] - mean[i]) * rstd[i];
    }
    const auto g_mean = static_cast<T>(g_sum * inv_c), gx_mean = static_cast<T>(gx_sum * inv_c);
    for (std::size_t c = 0; c < C; ++c) {
      const T xhat = (xi[c] - mean[i]) * rstd[i];
      dxi[c] += rstd[i] * (dyi[c] * gamma[c] - g_mean - xhat * gx_mean);
    }
  }, min_parallel_tasks(C));
  // Parameter gradients: threads own blocks of channels, sum the rows in row order into
  // partials and add each partial once.
  constexpr std::size_t block = 64;
  parallel_for((C + block - 1) / block, [&](std::size_t b) {
    const std::size_t c0 = b * block, width = std::min(block, C - c0);
    std::array<double, block> gamma_sum{}, beta_sum{};
    for (std::size_t i = 0; i < N; ++i) {
      const T* dyi = dy + i * C + c0;
      const T* xi = x + i * C + c0;
      for (std::size_t k = 0; k < width; ++k) {
        gamma_sum[k] += dyi[k] * (xi[k] - mean[i]) * rstd[i];
        beta_sum[k] += dyi[k];
      }
    }
    for (std::size_t k = 0; k < width; ++k) {
      dgamma[c0 + k] += static_cast<T>(gamma_sum[k]);
      if (dbeta) dbeta[c0 + k] += static_cast<T>(beta_sum[k]);
    }
  }, min_parallel_tasks(block * N));
}

}  // namespace rlxf::cpu
