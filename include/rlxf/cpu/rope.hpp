#pragma once
// Rotary position embedding (Su et al., 2021) on the CPU, in Hugging Face LLaMA's
// "rotate_half" convention: within each head of D channels, channel i pairs with i + D/2
// (i < D/2) and the pair turns by the angle p * theta^(-2i/D) at position p:
//   y[i]       = x[i] cos - x[i + D/2] sin
//   y[i + D/2] = x[i + D/2] cos + x[i] sin
// Angles, sines and cosines are computed in double and rounded once to T, so float loses
// nothing to large positions. Tokens are independent and rotated in parallel.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/threading.hpp"

namespace rlxf::cpu {

namespace detail {
// Rotates every channel pair of x (N, H, D) in place by direction * angle (direction +1 for
// the forward rotation, -1 for its inverse).
template <class T>
void rope_rotate(T* x, const std::int32_t* positions, std::size_t N, std::size_t H, std::size_t D,
                 double theta, double direction) {
  RLXF_REQUIRE(D % 2 == 0, "the head dimension D = ", D, " must be even");
  const std::size_t half = D / 2;
  std::vector<double> inv_freq(half);  // theta^(-2i/D)
  for (std::size_t i = 0; i < half; ++i)
    inv_freq[i] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
  parallel_for(N, [&](std::size_t n) {
    const double p = static_cast<double>(positions[n]);
    T* token = x + n * H * D;
    for (std::size_t i = 0; i < half; ++i) {
      const double angle = direction * p * inv_freq[i];
      const auto c = static_cast<T>(std::cos(angle));
      const auto s = static_cast<T>(std::sin(angle));
      for (std::size_t h = 0; h < H; ++h) {
        T* head = token + h * D;
        const T x1 = head[i], x2 = head[i + half];
        head[i] = x1 * c - x2 * s;
        head[i + half] = x2 * c + x1 * s;
      }
    }
  }, min_parallel_tasks(H * D));
}
}  // namespace detail

// Rotates x (N, H, D) in place: N tokens, H heads, head dimension D (even); positions (N),
// one per token.
template <class T>
void rope_forward(T* x, const std::int32_t* positions, std::size_t N, std::size_t H, std::size_t D,
                  double theta = 10000.0) {
  detail::rope_rotate(x, positions, N, H, D, theta, 1.0);
}

// In place: turns dx (N, H, D), holding the gradient with respect to the rotated output,
// into the gradient with respect to the input. The rotation is orthogonal, so this is the
// inverse rotation. positions (N) as in the forward.
template <class T>
void rope_backward(T* dx, const std::int32_t* positions, std::size_t N, std::size_t H,
                   std::size_t D, double theta = 10000.0) {
  detail::rope_rotate(dx, positions, N, H, D, theta, -1.0);
}

}  // namespace rlxf::cpu
