#pragma once
// Elementwise activations on the CPU: GELU (tanh approximation and exact), SiLU, SwiGLU.
// Every array holds n elements; each backward ADDS into its input gradients (llm.c style).
// T is float or double.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>

#include "rlxf/core/backend.hpp"
#include "rlxf/core/threading.hpp"

namespace rlxf::cpu {

// The two forms (core/backend.hpp).
using rlxf::GeluForm;

namespace detail {
template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}
}  // namespace detail

// y = gelu(x); x, y are (n). Both forms are evaluated without cancellation for negative x:
// 0.5 (1 + tanh(u)) = sigmoid(2u), and 0.5 (1 + erf(z)) = 0.5 erfc(-z).
template <class T>
void gelu_forward(const T* x, T* y, std::size_t n, GeluForm form) {
  constexpr T sqrt_2_over_pi = std::numbers::sqrt2_v<T> * std::numbers::inv_sqrtpi_v<T>;
  constexpr T inv_sqrt2 = std::numbers::sqrt2_v<T> / T(2);
  constexpr T cubic = T(0.044715);
  if (form == GeluForm::tanh) {
    parallel_for(n, [&](std::size_t i) {
      const T v = x[i];
      y[i] = v * detail::sigmoid(T(2) * sqrt_2_over_pi * (v + cubic * v * v * v));
    }, min_parallel_tasks(1));
  } else {
    parallel_for(n, [&](std::size_t i) {
      y[i] = T(0.5) * x[i] * std::erfc(-x[i] * inv_sqrt2);
    }, min_parallel_tasks(1));
  }
}

// dx += dy * gelu'(x); x, dy, dx are (n).
template <class T>
void gelu_backward(const T* x, const T* dy, T* dx, std::size_t n, GeluForm form) {
  constexpr T sqrt_2_over_pi = std::numbers::sqrt2_v<T> * std::numbers::inv_sqrtpi_v<T>;
  constexpr T inv_sqrt2 = std::numbers::sqrt2_v<T> / T(2);
  constexpr T inv_sqrt_2pi = inv_sqrt2 * std::numbers::inv_sqrtpi_v<T>;
  constexpr T cubic = T(0.044715);
  if (form == GeluForm::tanh) {
    // With u = sqrt(2/pi) (x + c x^3), gelu = x s, s = sigmoid(2u), so
    // gelu' = s + 2 x s (1 - s) u', u' = sqrt(2/pi) (1 + 3 c x^2); 1 - s is sigmoid(-2u).
    parallel_for(n, [&](std::size_t i) {
      const T v = x[i];
      const T u = sqrt_2_over_pi * (v + cubic * v * v * v);
      const T s = detail::sigmoid(T(2) * u), s_minus = detail::sigmoid(T(-2) * u);
      const T du = sqrt_2_over_pi * (T(1) + T(3) * cubic * v * v);
      dx[i] += dy[i] * (s + T(2) * v * s * s_minus * du);
    }, min_parallel_tasks(1));
  } else {
    // gelu' = Phi(x) + x phi(x), phi the standard normal density.
    parallel_for(n, [&](std::size_t i) {
      const T v = x[i];
      const T cdf = T(0.5) * std::erfc(-v * inv_sqrt2);
      const T pdf = inv_sqrt_2pi * std::exp(T(-0.5) * v * v);
      dx[i] += dy[i] * (cdf + v * pdf);
    }, min_parallel_tasks(1));
  }
}

// y = x * sigmoid(x); x, y are (n).
template <class T>
void silu_forward(const T* x, T* y, std::size_t n) {
  parallel_for(n, [&](std::size_t i) { y[i] = x[i] * detail::sigmoid(x[i]); },
               min_parallel_tasks(1));
}

// dx += dy * silu'(x), silu' = s (1 + x (1 - s)) with s = sigmoid(x); x, dy, dx are (n).
template <class T>
void silu_backward(const T* x, const T* dy, T* dx, std::size_t n) {
  parallel_for(n, [&](std::size_t i) {
    const T s = detail::sigmoid(x[i]);
    dx[i] += dy[i] * s * (T(1) + x[i] * (T(1) - s));
  }, min_parallel_tasks(1));
}

// SwiGLU: y = silu(gate) * up, elementwise; gate, up, y are (n).
template <class T>
void swiglu_forward(const T* gate, const T* up, T* y, std::size_t n) {
  parallel_for(n, [&](std::size_t i) { y[i] = gate[i] * detail::sigmoid(gate[i]) * up[i]; },
               min_parallel_tasks(1));
}

// dgate += dy * up * silu'(gate), dup += dy * silu(gate); all arrays are (n).
template <class T>
void swiglu_backward(const T* gate, const T* up, const T* dy, T* dgate, T* dup, std::size_t n) {
  parallel_for(n, [&](std::size_t i) {
    const T g = gate[i];
    const T s = detail::sigmoid(g);
    dgate[i] += dy[i] * up[i] * s * (T(1) + g * (T(1) - s));
    dup[i] += dy[i] * g * s;
  }, min_parallel_tasks(1));
}

}  // namespace rlxf::cpu
