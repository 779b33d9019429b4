#pragma once
// GRPO loss (Shao et al. 2024; TRL GRPOTrainer): a token-level clipped surrogate with one
// advantage per sequence (grpo_advantages in advantages.hpp), plus beta times the k3 KL to the
// reference in the loss (docs/algorithms.md):
//   lr_t  = logp_new_t - logp_old_t,  rho_t = exp(clamp(lr_t, -20, 20))
//           (logp_old empty: on-policy, logp_old = logp_new detached, so rho = 1, drho = 1)
//   D_t   = exp(ref_t - logp_new_t) - (ref_t - logp_new_t) - 1,  dD/dlogp_new = 1 - exp(ref - logp_new)
//   l_t   = -min(rho_t A_b, clip(rho_t, 1 - eps_low, 1 + eps_high) A_b) + beta D_t
//           (delta > 0: TRL's two-sided clip, rho in the unclipped branch capped at delta)
//   L     = sum w_t l_t, w from the aggregation: token_mean (TRL's default loss_type "dapo",
//           = "bnpo" on one process), sequence_mean ("grpo"), fixed_length ("dr_grpo").
// Statistics (TRL names, token means over the mask): kl = mean D, clip_ratio/low_mean =
// 1[rho < 1 - eps_low and A < 0], clip_ratio/high_mean = 1[rho > 1 + eps_high and A > 0],
// clip_ratio/region_mean = either.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "rlxf/algo/aggregation.hpp"
#include "rlxf/algo/validation.hpp"
#include "rlxf/core/error.hpp"

namespace rlxf::algo {

struct GrpoLossOptions {
  double eps_low = 0.2;         // TRL epsilon
  double eps_high = 0.2;        // TRL epsilon_high (defaults to epsilon; DAPO 0.28)
  double beta = 0.0;            // TRL now 0.0; DeepSeekMath and older TRL 0.04
  double delta = 0;             // TRL delta (INTELLECT-2 two-sided clip), 0 = off, else > 1 + eps_high
  double log_ratio_clamp = 20;  // as ppo_policy_loss (TRL does not clamp)
  LossAggregation aggregation = LossAggregation::token_mean;  // TRL loss_type "dapo"
  std::size_t max_length = 0;   // fixed_length: TRL max_completion_length; 0 = L
};

struct GrpoLossStats {
  double loss = 0;
  double kl = 0;  // masked token mean of D_t (0 without a reference)
  double clip_ratio_low = 0, clip_ratio_high = 0, clip_ratio = 0;
};

// logp_new (B, L); logp_old (B, L) or empty (on-policy); ref_logp (B, L), or empty when
// beta == 0; advantages (B), one per sequence; mask (B, L); dlogp_new (B, L) or empty.
template <class T>
GrpoLossStats grpo_loss(std::span<const T> logp_new, std::span<const T> logp_old, std::span<const T> ref_logp,
                        std::span<const T> advantages, std::span<const std::uint8_t> mask, std::span<T> dlogp_new,
                        std::size_t B, std::size_t L, const GrpoLossOptions& opt = {}) {
  constexpr const char* fn = "grpo_loss";
  RLXF_REQUIRE(B > 0 && L > 0, "empty shape (B, L) = (", B, ", ", L, ")");
  internal::require_size(fn, "logp_new", logp_new.size(), B * L, "(B, L)");
  internal::require_size_or_empty(fn, "logp_old", logp_old.size(), B * L, "(B, L)");
  internal::require_size_or_empty(fn, "ref_logp", ref_logp.size(), B * L, "(B, L)");
  internal::require_size(fn, "advantages", advantages.size(), B, "(B)");
  internal::require_size(fn, "mask", mask.size(), B * L, "(B, L)");
  internal::require_size_or_empty(fn, "dlogp_new", dlogp_new.size(), B * L, "(B, L)");
  RLXF_REQUIRE(std::isfinite(opt.eps_low) && opt.eps_low >= 0 && opt.eps_low < 1, "eps_low = ", opt.eps_low,
               ", expected in [0, 1)");
  RLXF_REQUIRE(std::isfinite(opt.eps_high) && opt.eps_high >= 0, "eps_high = ", opt.eps_high,
               ", expected finite and >= 0");
  RLXF_REQUIRE(std::isfinite(opt.beta) && opt.beta >= 0, "beta = ", opt.beta, ", expected finite and >= 0");
  RLXF_REQUIRE(opt.beta == 0 || !ref_logp.empty(), "beta = ", opt.beta, " needs ref_logp");
  RLXF_REQUIRE(opt.delta == 0 || (std::isfinite(opt.delta) && opt.delta > 1 + opt.eps_high), "delta = ",
               opt.delta, ", expected 0 (off) or > 1 + eps_high");
  RLXF_REQUIRE(opt.log_ratio_clamp > 0, "log_ratio_clamp = ", opt.log_ratio_clamp, ", expected > 0");
  internal::require_mask_values(fn, mask, L);
  internal::require_finite(fn, "logp_new", logp_new, mask, L);
  internal::require_finite(fn, "logp_old", logp_old, logp_old.empty() ? std::span<const std::uint8_t>{} : mask, L);
  internal::require_finite(fn, "ref_logp", ref_logp, ref_logp.empty() ? std::span<const std::uint8_t>{} : mask, L);
  internal::require_finite(fn, "advantages", advantages);
  const auto w = token_weights(mask, B, L, opt.aggregation, opt.max_length);
  const double lo = 1.0 - opt.eps_low, hi = 1.0 + opt.eps_high;
  GrpoLossStats st;
  std::size_t n = 0, low = 0, high = 0;
  double kl_sum = 0;
  for (std::size_t i = 0; i < B * L; ++i) {
    if (!mask[i]) {
      if (!dlogp_new.empty()) dlogp_new[i] = T(0);
      continue;
    }
    const double A = static_cast<double>(advantages[i / L]);
    const double lp = static_cast<double>(logp_new[i]);
    double rho = 1, drho = 1;
    if (!logp_old.empty()) {
      const double lr = lp - static_cast<double>(logp_old[i]);
      rho = std::exp(std::clamp(lr, -opt.log_ratio_clamp, opt.log_ratio_clamp));
      drho = std::abs(lr) <= opt.log_ratio_clamp ? rho : 0.0;
    }
    double rho1 = rho, drho1 = drho;
    if (opt.delta > 0 && rho > opt.delta) {
      rho1 = opt.delta;
      drho1 = 0;
    }
    const double u = -A * rho1, v = -A * std::clamp(rho, lo, hi);
    double l = std::max(u, v);
    double g = v > u ? 0.0 : -A * drho1;
    if (rho < lo && A < 0) ++low;
    if (rho > hi && A > 0) ++high;
    if (!ref_logp.empty()) {
      const double x = static_cast<double>(ref_logp[i]) - lp;  // log ref - log pi
      const double D = std::expm1(x) - x;
      kl_sum += D;
      l += opt.beta * D;
      g += opt.beta * -std::expm1(x);
    }
    st.loss += w[i] * l;
    if (!dlogp_new.empty()) dlogp_new[i] = static_cast<T>(w[i] * g);
    ++n;
  }
  const auto nd = static_cast<double>(n > 0 ? n : 1);
  st.kl = kl_sum / nd;
  st.clip_ratio_low = static_cast<double>(low) / nd;
  st.clip_ratio_high = static_cast<double>(high) / nd;
  st.clip_ratio = static_cast<double>(low + high) / nd;  // disjoint events
  return st;
}

}  // namespace rlxf::algo
