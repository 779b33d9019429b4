#pragma once
// Per-token KL estimators between the policy and the reference, as functions of the
// log-ratio lr = log pi(a_t) - log pi_ref(a_t) (Schulman's k1, k2, k3; docs/algorithms.md):
//   k1 = lr                       d k1/d lr = 1
//   k2 = lr^2 / 2                 d k2/d lr = lr
//   k3 = exp(-lr) - 1 + lr        d k3/d lr = 1 - exp(-lr)
// k1 is unbiased for KL(pi || ref) but can be negative per token; k3 is unbiased and >= 0;
// k2 is biased, >= 0, low variance. ALGORITHMS.md: k1 when the KL goes into the reward (PPO,
// RLOO), k2/k3 when it goes into the loss (GRPO uses k3).
// OpenRLHF clamps the estimate (not the log-ratio) to [-10, 10]; KlOptions::clamp does the
// same, and the derivative is 0 where the clamp is active (as torch.clamp's backward).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "rlxf/algo/validation.hpp"
#include "rlxf/core/error.hpp"

namespace rlxf::algo {

enum class KlEstimator { k1, k2, k3 };

struct KlOptions {
  KlEstimator estimator = KlEstimator::k1;  // TRL PPO's default (kl_estimator="k1")
  bool clamp = false;                       // OpenRLHF clamps to [-clamp_bound, clamp_bound]
  double clamp_bound = 10.0;                // OpenRLHF's bound
};

// k(lr) for one token, unclamped.
inline double kl_estimate(double log_ratio, KlEstimator e) {
  switch (e) {
    case KlEstimator::k1: return log_ratio;
    case KlEstimator::k2: return 0.5 * log_ratio * log_ratio;
    case KlEstimator::k3: return std::expm1(-log_ratio) + log_ratio;
  }
  return 0;  // unreachable
}

// d k(lr) / d lr for one token, unclamped. Since lr = log pi - log pi_ref, this is also the
// derivative with respect to log pi.
inline double kl_estimate_derivative(double log_ratio, KlEstimator e) {
  switch (e) {
    case KlEstimator::k1: return 1.0;
    case KlEstimator::k2: return log_ratio;
    case KlEstimator::k3: return -std::expm1(-log_ratio);
  }
  return 0;  // unreachable
}

// Per-token KL estimates. logp, ref_logp (N) (any layout, e.g. (B, L) flattened); mask (N)
// or empty for all valid; kl (N) receives the estimate (0 under mask 0); dkl_dlogp (N)
// receives d kl_t / d logp_t (0 under mask 0 and where the clamp is active) or is empty.
template <class T>
void token_kl(std::span<const T> logp, std::span<const T> ref_logp, std::span<const std::uint8_t> mask,
              std::span<T> kl, std::span<T> dkl_dlogp, const KlOptions& opt = {}) {
  const std::size_t N = logp.size();
  internal::require_size("token_kl", "ref_logp", ref_logp.size(), N, "logp's size");
  internal::require_size_or_empty("token_kl", "mask", mask.size(), N, "logp's size");
  internal::require_size("token_kl", "kl", kl.size(), N, "logp's size");
  internal::require_size_or_empty("token_kl", "dkl_dlogp", dkl_dlogp.size(), N, "logp's size");
  internal::require_mask_values("token_kl", mask, 0);
  RLXF_REQUIRE(!opt.clamp || (std::isfinite(opt.clamp_bound) && opt.clamp_bound > 0),
               "clamp_bound = ", opt.clamp_bound, ", expected finite and > 0");
  internal::require_finite("token_kl", "logp", logp, mask);
  internal::require_finite("token_kl", "ref_logp", ref_logp, mask);
  for (std::size_t i = 0; i < N; ++i) {
    if (!mask.empty() && mask[i] == 0) {
      kl[i] = T(0);
      if (!dkl_dlogp.empty()) dkl_dlogp[i] = T(0);
      continue;
    }
    const double lr = static_cast<double>(logp[i]) - static_cast<double>(ref_logp[i]);
    double k = kl_estimate(lr, opt.estimator);
    double d = kl_estimate_derivative(lr, opt.estimator);
    if (opt.clamp && (k < -opt.clamp_bound || k > opt.clamp_bound)) {
      k = std::clamp(k, -opt.clamp_bound, opt.clamp_bound);
      d = 0;
    }
    kl[i] = static_cast<T>(k);
    if (!dkl_dlogp.empty()) dkl_dlogp[i] = static_cast<T>(d);
  }
}

// objective/kl as TRL logs it: the mean over the B sequences of the summed per-token KL.
// kl (B, L); mask (B, L) or empty. This is also the KL the adaptive controller observes.
template <class T>
double mean_sequence_kl(std::span<const T> kl, std::span<const std::uint8_t> mask, std::size_t B,
                        std::size_t L) {
  RLXF_REQUIRE(B > 0, "batch is empty");
  internal::require_size("mean_sequence_kl", "kl", kl.size(), B * L, "(B, L)");
  internal::require_size_or_empty("mean_sequence_kl", "mask", mask.size(), B * L, "(B, L)");
  internal::require_mask_values("mean_sequence_kl", mask, L);
  internal::require_finite("mean_sequence_kl", "kl", kl, mask, L);
  double s = 0;
  for (std::size_t i = 0; i < B * L; ++i)
    if (mask.empty() || mask[i]) s += static_cast<double>(kl[i]);
  return s / static_cast<double>(B);
}

}  // namespace rlxf::algo
