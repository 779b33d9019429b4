#pragma once
// Entropy of the categorical distributions softmax(z) of the policy's logits, per token
// (TRL logs its mean as policy/entropy_avg; an entropy bonus subtracts coef * H from the loss):
//   H      = logsumexp(z) - sum_j p_j z_j,  p = softmax(z)
//   dH/dz_j = -p_j (z_j - sum_k p_k z_k)
// The mean is over the valid tokens (masked mean); its gradient is w dH/dz with w = 1 / n.
// For a loss term -coef * mean H, scale the gradient by -coef.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "rlxf/algo/validation.hpp"
#include "rlxf/core/error.hpp"

namespace rlxf::algo {

// logits (N, V) row-major (N tokens, e.g. B * L); mask (N) or empty for all valid; entropy (N)
// receives H per token (0 under mask 0) or is empty; dlogits (N, V) receives d(mean H)/dz
// (0 for masked rows) or is empty. Returns the masked mean of H (0 when no token is valid).
template <class T>
double categorical_entropy(std::span<const T> logits, std::span<const std::uint8_t> mask, std::span<T> entropy,
                           std::span<T> dlogits, std::size_t N, std::size_t V) {
  constexpr const char* fn = "categorical_entropy";
  RLXF_REQUIRE(N > 0 && V > 0, "empty shape (N, V) = (", N, ", ", V, ")");
  internal::require_size(fn, "logits", logits.size(), N * V, "(N, V)");
  internal::require_size_or_empty(fn, "mask", mask.size(), N, "(N)");
  internal::require_size_or_empty(fn, "entropy", entropy.size(), N, "(N)");
  internal::require_size_or_empty(fn, "dlogits", dlogits.size(), N * V, "(N, V)");
  internal::require_mask_values(fn, mask, 0);
  std::size_t n = 0;
  for (std::size_t r = 0; r < N; ++r) {
    if (!mask.empty() && !mask[r]) continue;
    ++n;
    for (std::size_t j = 0; j < V; ++j)
      if (!std::isfinite(static_cast<double>(logits[r * V + j])))
        fail(fn, ": logits[", r, ", ", j, "] = ", static_cast<double>(logits[r * V + j]), " is not finite");
  }
  const double inv_n = 1.0 / static_cast<double>(n > 0 ? n : 1);
  double total = 0;
  for (std::size_t r = 0; r < N; ++r) {
    const T* z = logits.data() + r * V;
    if (!mask.empty() && !mask[r]) {
      if (!entropy.empty()) entropy[r] = T(0);
      if (!dlogits.empty()) std::fill_n(dlogits.data() + r * V, V, T(0));
      continue;
    }
    double zmax = static_cast<double>(z[0]);
    for (std::size_t j = 1; j < V; ++j) zmax = std::max(zmax, static_cast<double>(z[j]));
    double se = 0, sez = 0;  // sum e^{z - max}, sum e^{z - max} (z - max)
    for (std::size_t j = 0; j < V; ++j) {
      const double s = static_cast<double>(z[j]) - zmax;
      const double e = std::exp(s);
      se += e;
      sez += e * s;
    }
    // H = log se - sez / se (the shift by max cancels); E_p[z] - max = sez / se.
    const double mean_s = sez / se;
    const double H = std::log(se) - mean_s;
    total += H;
    if (!entropy.empty()) entropy[r] = static_cast<T>(H);
    if (!dlogits.empty())
      for (std::size_t j = 0; j < V; ++j) {
        const double s = static_cast<double>(z[j]) - zmax;
        const double p = std::exp(s) / se;
        dlogits[r * V + j] = static_cast<T>(-inv_n * p * (s - mean_s));
      }
  }
  return total * inv_n;
}

}  // namespace rlxf::algo
