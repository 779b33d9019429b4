#pragma once
// RLOO loss (Ahmadian et al. 2024; TRL RLOOTrainer): REINFORCE on the SEQUENCE log-prob with
// the leave-one-out baseline (rloo_advantages in advantages.hpp, on rewards with the KL in
// them: kl_penalised_sequence_rewards), with TRL's sequence-level PPO clip:
//   s_b   = sum_t mask_{b,t} logp_new_{b,t}   (s_old_b likewise)
//   rho_b = exp(clamp(s_b - s_old_b, -20, 20))   (logp_old empty: on-policy, rho = 1, drho = 1,
//                                                 the plain REINFORCE gradient -A_b / B)
//   l_b   = max(-A_b rho_b, -A_b clip(rho_b, 1 - eps, 1 + eps)),  L = (1/B) sum_b l_b
//   dL/dlogp_new_{b,t} = mask_{b,t} (1/B) (-A_b rho_b) where the unclipped branch is active
// Statistics over sequences: clipfrac, approxkl = 0.5 mean (s - s_old)^2, ratio_mean.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "rlxf/algo/validation.hpp"
#include "rlxf/core/error.hpp"

namespace rlxf::algo {

struct RlooLossOptions {
  double eps = 0.2;             // TRL cliprange
  double log_ratio_clamp = 20;  // as ppo_policy_loss (TRL does not clamp)
};

struct RlooLossStats {
  double loss = 0;
  double clipfrac = 0;
  double approxkl = 0;
  double ratio_mean = 0;
};

// logp_new (B, L); logp_old (B, L) or empty; advantages (B); mask (B, L); dlogp_new (B, L)
// or empty.
template <class T>
RlooLossStats rloo_loss(std::span<const T> logp_new, std::span<const T> logp_old, std::span<const T> advantages,
                        std::span<const std::uint8_t> mask, std::span<T> dlogp_new, std::size_t B, std::size_t L,
                        const RlooLossOptions& opt = {}) {
  constexpr const char* fn = "rloo_loss";
  RLXF_REQUIRE(B > 0 && L > 0, "empty shape (B, L) = (", B, ", ", L, ")");
  internal::require_size(fn, "logp_new", logp_new.size(), B * L, "(B, L)");
  internal::require_size_or_empty(fn, "logp_old", logp_old.size(), B * L, "(B, L)");
  internal::require_size(fn, "advantages", advantages.size(), B, "(B)");
  internal::require_size(fn, "mask", mask.size(), B * L, "(B, L)");
  internal::require_size_or_empty(fn, "dlogp_new", dlogp_new.size(), B * L, "(B, L)");
  RLXF_REQUIRE(std::isfinite(opt.eps) && opt.eps >= 0 && opt.eps < 1, "eps = ", opt.eps, ", expected in [0, 1)");
  RLXF_REQUIRE(opt.log_ratio_clamp > 0, "log_ratio_clamp = ", opt.log_ratio_clamp, ", expected > 0");
  internal::require_mask_values(fn, mask, L);
  internal::require_finite(fn, "logp_new", logp_new, mask, L);
  internal::require_finite(fn, "logp_old", logp_old, logp_old.empty() ? std::span<const std::uint8_t>{} : mask, L);
  internal::require_finite(fn, "advantages", advantages);
  const double Bd = static_cast<double>(B);
  RlooLossStats st;
  std::size_t clipped = 0;
  double kl2 = 0, ratio_sum = 0;
  for (std::size_t b = 0; b < B; ++b) {
    double s = 0, s_old = 0;
    for (std::size_t t = 0; t < L; ++t)
      if (mask[b * L + t]) {
        s += static_cast<double>(logp_new[b * L + t]);
        if (!logp_old.empty()) s_old += static_cast<double>(logp_old[b * L + t]);
      }
    const double lr = logp_old.empty() ? 0.0 : s - s_old;
    const double rho = std::exp(std::clamp(lr, -opt.log_ratio_clamp, opt.log_ratio_clamp));
    const double drho = std::abs(lr) <= opt.log_ratio_clamp ? rho : 0.0;
    const double A = static_cast<double>(advantages[b]);
    const double u = -A * rho, v = -A * std::clamp(rho, 1.0 - opt.eps, 1.0 + opt.eps);
    const double g = v > u ? 0.0 : -A * drho / Bd;
    if (v > u) ++clipped;
    st.loss += std::max(u, v) / Bd;
    kl2 += lr * lr;
    ratio_sum += rho;
    if (!dlogp_new.empty())
      for (std::size_t t = 0; t < L; ++t) dlogp_new[b * L + t] = mask[b * L + t] ? static_cast<T>(g) : T(0);
  }
  st.clipfrac = static_cast<double>(clipped) / Bd;
  st.approxkl = 0.5 * kl2 / Bd;
  st.ratio_mean = ratio_sum / Bd;
  return st;
}

}  // namespace rlxf::algo
