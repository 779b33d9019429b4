#pragma once
// Row-wise softmax, log-softmax and cross-entropy on the CPU. Every row is shifted by its
// maximum before exponentiation, so large logits (1e4 and beyond) give finite results.
// Rows are independent and computed in parallel; each backward ADDS into its input gradient.
// Row sums accumulate in double (free for a strictly ordered sum, which is bound by the add
// latency in either precision). T is float or double.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/threading.hpp"

namespace rlxf::cpu {

namespace detail {
// max_j x_j over the C entries of one row (-inf for an empty row).
template <class T>
T row_max(const T* x, std::size_t C) {
  T max = -std::numeric_limits<T>::infinity();
  for (std::size_t j = 0; j < C; ++j) max = std::max(max, x[j]);
  return max;
}

// log sum_j exp(x_j) of one row of C entries, kept as its two parts: the row maximum and
// log sum_j exp(x_j - max). Results are formed from (x_j - max), exact for nearby values, so
// a float row around 1e4 loses nothing to the rounding of numbers of that size.
template <class T>
struct LogSumExp {
  T max;
  T log_sum;
  T value() const { return max + log_sum; }
};
template <class T>
LogSumExp<T> log_sum_exp(const T* x, std::size_t C) {
  const T max = row_max(x, C);
  double sum = 0;
  for (std::size_t j = 0; j < C; ++j) sum += std::exp(x[j] - max);
  return {max, static_cast<T>(std::log(sum))};
}
}  // namespace detail

// y = softmax(x) along each row; x, y are (N, C).
template <class T>
void softmax_forward(const T* x, T* y, std::size_t N, std::size_t C) {
  parallel_for(N, [&](std::size_t i) {
    const T* xi = x + i * C;
    T* yi = y + i * C;
    const T max = detail::row_max(xi, C);
    double sum = 0;
    for (std::size_t j = 0; j < C; ++j) {
      yi[j] = std::exp(xi[j] - max);
      sum += yi[j];
    }
    const auto inv = static_cast<T>(1.0 / sum);
    for (std::size_t j = 0; j < C; ++j) yi[j] *= inv;
  }, min_parallel_tasks(C));
}

// dx += y * (dy - sum_j dy_j y_j) along each row; y (the softmax output), dy, dx are (N, C).
template <class T>
void softmax_backward(const T* y, const T* dy, T* dx, std::size_t N, std::size_t C) {
  parallel_for(N, [&](std::size_t i) {
    const T* yi = y + i * C;
    const T* dyi = dy + i * C;
    T* dxi = dx + i * C;
    double dot_sum = 0;
    for (std::size_t j = 0; j < C; ++j) dot_sum += dyi[j] * yi[j];
    const auto dot = static_cast<T>(dot_sum);
    for (std::size_t j = 0; j < C; ++j) dxi[j] += yi[j] * (dyi[j] - dot);
  }, min_parallel_tasks(C));
}

// y = x - logsumexp(x) along each row; x, y are (N, C).
template <class T>
void log_softmax_forward(const T* x, T* y, std::size_t N, std::size_t C) {
  parallel_for(N, [&](std::size_t i) {
    const T* xi = x + i * C;
    T* yi = y + i * C;
    const auto row_lse = detail::log_sum_exp(xi, C);
    for (std::size_t j = 0; j < C; ++j) yi[j] = (xi[j] - row_lse.max) - row_lse.log_sum;
  }, min_parallel_tasks(C));
}

// dx += dy - exp(y) * sum_j dy_j along each row; y (the log-softmax output), dy, dx are (N, C).
template <class T>
void log_softmax_backward(const T* y, const T* dy, T* dx, std::size_t N, std::size_t C) {
  parallel_for(N, [&](std::size_t i) {
    const T* yi = y + i * C;
    const T* dyi = dy + i * C;
    T* dxi = dx + i * C;
    double dy_sum = 0;
    for (std::size_t j = 0; j < C; ++j) dy_sum += dyi[j];
    const auto sum = static_cast<T>(dy_sum);
    for (std::size_t j = 0; j < C; ++j) dxi[j] += dyi[j] - std::exp(yi[j]) * sum;
  }, min_parallel_tasks(C));
}

namespace detail {
// The number of rows whose target is not ignore_index; throws rlxf::Error, naming `op` and the
// row, for a target outside [0, V) that is not ignore_index. Run before a parallel region
// (an exception cannot leave one).
inline std::size_t count_targets(const char* op, const std::int32_t* targets, std::size_t N, std::size_t V,
                                 std::int32_t ignore_index) {
  std::size_t counted = 0;
  for (std::size_t i = 0; i < N; ++i) {
    const std::int32_t t = targets[i];
    if (t == ignore_index) continue;
    if (t < 0 || static_cast<std::size_t>(t) >= V)
      fail(op, ": row ", i, " has target ", t, ", outside the vocabulary [0, ", V, ") and not the ignore index ",
           ignore_index);
    ++counted;
  }
  return counted;
}

// dlogits[i] += g_i (onehot(targets[i]) - softmax(z_i)), z = logits / tau, g_i = sign d[i] / tau,
// for the rows not ignored: the gradient of both the token log-probs (sign +1) and the
// cross-entropy (sign -1, tau 1).
template <class T>
void add_softmax_gradient(const T* logits, const std::int32_t* targets, const T* lse, const T* d, T* dlogits,
                          std::size_t N, std::size_t V, T tau, T sign, std::int32_t ignore_index) {
  parallel_for(N, [&](std::size_t i) {
    const std::int32_t t = targets[i];
    if (t == ignore_index) return;
    const T* row = logits + i * V;
    T* drow = dlogits + i * V;
    const T g = sign * d[i] / tau;
    for (std::size_t j = 0; j < V; ++j) drow[j] -= g * std::exp(row[j] / tau - lse[i]);
    drow[static_cast<std::size_t>(t)] += g;
  }, min_parallel_tasks(V));
}
}  // namespace detail

// Log-probabilities of the targets under softmax(logits / temperature), without a scaled
// copy of the logits: with z = logits[i] / temperature (each element divided in T),
//   lse[i] = logsumexp(z),  logp[i] = z[targets[i]] - lse[i]  (0 where ignored),
//   entropy[i] = lse[i] - sum_j softmax(z)_j z_j  (entropy may be nullptr).
// logits (N, V); targets, logp, lse, entropy (N). Returns the number of rows not ignored.
// Throws rlxf::Error, naming `op` and the row, for a target outside [0, V) that is not
// ignore_index, or a temperature that is not positive.
template <class T>
std::size_t token_logprobs_forward(const T* logits, const std::int32_t* targets, T* logp, T* lse, T* entropy,
                                   std::size_t N, std::size_t V, double temperature,
                                   std::int32_t ignore_index = -100, const char* op = "token_logprobs") {
  RLXF_REQUIRE(temperature > 0 && std::isfinite(temperature), op, ": temperature must be positive, got ",
               temperature);
  const std::size_t counted = detail::count_targets(op, targets, N, V, ignore_index);
  const auto tau = static_cast<T>(temperature);
  parallel_for(N, [&](std::size_t i) {
    thread_local std::vector<T> scaled;
    const T* row = logits + i * V;
    if (temperature != 1.0) {
      scaled.resize(V);
      for (std::size_t j = 0; j < V; ++j) scaled[j] = row[j] / tau;
      row = scaled.data();
    }
    const auto row_lse = detail::log_sum_exp(row, V);
    lse[i] = row_lse.value();
    const std::int32_t t = targets[i];
    logp[i] = t == ignore_index ? T(0) : (row[static_cast<std::size_t>(t)] - row_lse.max) - row_lse.log_sum;
    if (entropy) {
      double mean_z = 0;  // sum_j p_j z_j
      for (std::size_t j = 0; j < V; ++j) mean_z += std::exp(static_cast<double>(row[j] - lse[i])) * row[j];
      entropy[i] = static_cast<T>(static_cast<double>(lse[i]) - mean_z);
    }
  }, min_parallel_tasks(V));
  return counted;
}

// dlogits[i] += dlogp[i] (onehot(targets[i]) - softmax(z)) / temperature for rows not ignored,
// z = logits[i] / temperature and lse from token_logprobs_forward. Targets must be valid.
template <class T>
void token_logprobs_backward(const T* logits, const std::int32_t* targets, const T* lse, const T* dlogp, T* dlogits,
                             std::size_t N, std::size_t V, double temperature, std::int32_t ignore_index = -100) {
  detail::add_softmax_gradient(logits, targets, lse, dlogp, dlogits, N, V, static_cast<T>(temperature), T(1),
                               ignore_index);
}

// Cross-entropy per row: losses[i] = lse[i] - logits[i, targets[i]] (the negated log-prob at
// temperature 1), lse[i] the log-sum-exp of row i (written for every row, saved for
// backward). logits (N, V); targets, losses, lse (N). Rows whose target is ignore_index get
// loss 0. Returns the number of rows not ignored. Throws rlxf::Error, naming the row, for a
// target outside [0, V) that is not ignore_index.
template <class T>
std::size_t cross_entropy_forward(const T* logits, const std::int32_t* targets, T* losses, T* lse,
                                  std::size_t N, std::size_t V, std::int32_t ignore_index = -100) {
  const std::size_t counted = token_logprobs_forward(logits, targets, losses, lse, static_cast<T*>(nullptr), N, V,
                                                     1.0, ignore_index, "cross_entropy_forward");
  for (std::size_t i = 0; i < N; ++i)
    if (targets[i] != ignore_index) losses[i] = -losses[i];
  return counted;
}

// dlogits[i] += dlosses[i] * (softmax(logits[i]) - onehot(targets[i])) for rows not ignored;
// softmax is exp(logits - lse) with lse from cross_entropy_forward. logits, dlogits (N, V);
// targets, lse, dlosses (N). Targets must be valid (cross_entropy_forward checked them).
// In float, lse carries the rounding of its magnitude: logits around 1e4 give probabilities
// to about 1e4 * 6e-8 = 6e-4 relative.
template <class T>
void cross_entropy_backward(const T* logits, const std::int32_t* targets, const T* lse,
                            const T* dlosses, T* dlogits, std::size_t N, std::size_t V,
                            std::int32_t ignore_index = -100) {
  detail::add_softmax_gradient(logits, targets, lse, dlosses, dlogits, N, V, T(1), T(-1), ignore_index);
}

}  // namespace rlxf::cpu
