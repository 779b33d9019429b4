#pragma once
// PPO losses over (B, L) token batches with a mask, each returning its value and statistics and
// writing its gradient (docs/algorithms.md). Sums in double, gradients written in T and
// OVERWRITTEN; an empty gradient span skips it. Inputs under mask 0 are never read and get
// gradient 0.
//
// Clipped surrogate (TRL ppo_trainer; OpenRLHF PolicyLoss for eps_low/eps_high, dual clip and
// the log-ratio clamp):
//   lr_t  = logp_new_t - logp_old_t,  rho_t = exp(clamp(lr_t, -20, 20))
//   l_t   = max(-A_t rho_t, -A_t clip(rho_t, 1 - eps_low, 1 + eps_high))
//   dual clip c > 1 (OpenRLHF): for A_t < 0, l_t = min(l_t, -c A_t)
//   L     = sum w_t l_t with w from the aggregation (token_mean = TRL's masked_mean)
//   dL/dlogp_new_t = w_t (-A_t rho_t) where the unclipped branch is active, else 0
//   clipfrac = masked mean of 1[-A clip(rho) > -A rho] (TRL pg_clipfrac); dual_clipfrac the
//   fraction where the dual clip is active; approxkl = 0.5 masked_mean(lr^2); ratio_mean =
//   masked_mean(rho). All statistics are token means over the mask. (TRL takes approxkl and
//   val/ratio as unmasked means over the padded (B, L) with pads at lr = 0, rho = 1, which
//   dilutes them by the padding fraction; we do not.)
// Clipped value loss (TRL):
//   V_clip = V_old + clip(V - V_old, -eps_v, eps_v)
//   L_V    = 0.5 sum w_t max((V_t - R_t)^2, (V_clip_t - R_t)^2)
//   dL_V/dV_t = w_t (V_t - R_t) where the unclipped branch is active, else 0
//   clipfrac = masked mean of 1[(V_clip - R)^2 > (V - R)^2] (TRL vf_clipfrac)
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "rlxf/algo/aggregation.hpp"
#include "rlxf/algo/validation.hpp"
#include "rlxf/core/error.hpp"

namespace rlxf::algo {

struct PpoPolicyLossOptions {
  double eps_low = 0.2;           // TRL cliprange, OpenRLHF eps_clip
  double eps_high = 0.2;          // = eps_low unless asymmetric (DAPO's clip-higher: 0.28)
  double dual_clip = 0;           // c > 1 turns on OpenRLHF's dual clip; 0 = off
  double log_ratio_clamp = 20;    // OpenRLHF; lr is clamped to [-20, 20] before exp
  LossAggregation aggregation = LossAggregation::token_mean;  // TRL masked_mean
  std::size_t max_length = 0;     // fixed_length only; 0 = L
};

struct PolicyLossStats {
  double loss = 0;
  double clipfrac = 0;       // policy/clipfrac_avg
  double dual_clipfrac = 0;  // fraction of tokens where the dual clip is active
  double approxkl = 0;       // policy/approxkl_avg = 0.5 mean (logp_new - logp_old)^2
  double ratio_mean = 0;     // val/ratio (masked)
};

// logp_new, logp_old, advantages (B, L); mask (B, L); dlogp_new (B, L) or empty.
template <class T>
PolicyLossStats ppo_policy_loss(std::span<const T> logp_new, std::span<const T> logp_old,
                                std::span<const T> advantages, std::span<const std::uint8_t> mask,
                                std::span<T> dlogp_new, std::size_t B, std::size_t L,
                                const PpoPolicyLossOptions& opt = {}) {
  constexpr const char* fn = "ppo_policy_loss";
  RLXF_REQUIRE(B > 0 && L > 0, "empty shape (B, L) = (", B, ", ", L, ")");
  internal::require_size(fn, "logp_new", logp_new.size(), B * L, "(B, L)");
  internal::require_size(fn, "logp_old", logp_old.size(), B * L, "(B, L)");
  internal::require_size(fn, "advantages", advantages.size(), B * L, "(B, L)");
  internal::require_size(fn, "mask", mask.size(), B * L, "(B, L)");
  internal::require_size_or_empty(fn, "dlogp_new", dlogp_new.size(), B * L, "(B, L)");
  RLXF_REQUIRE(std::isfinite(opt.eps_low) && opt.eps_low >= 0 && opt.eps_low < 1, "eps_low = ", opt.eps_low,
               ", expected in [0, 1)");
  RLXF_REQUIRE(std::isfinite(opt.eps_high) && opt.eps_high >= 0, "eps_high = ", opt.eps_high,
               ", expected finite and >= 0");
  RLXF_REQUIRE(opt.dual_clip == 0 || (std::isfinite(opt.dual_clip) && opt.dual_clip > 1), "dual_clip = ",
               opt.dual_clip, ", expected 0 (off) or > 1");
  RLXF_REQUIRE(opt.log_ratio_clamp > 0, "log_ratio_clamp = ", opt.log_ratio_clamp, ", expected > 0");
  internal::require_mask_values(fn, mask, L);
  internal::require_finite(fn, "logp_new", logp_new, mask, L);
  internal::require_finite(fn, "logp_old", logp_old, mask, L);
  internal::require_finite(fn, "advantages", advantages, mask, L);
  const auto w = token_weights(mask, B, L, opt.aggregation, opt.max_length);
  const double lo = 1.0 - opt.eps_low, hi = 1.0 + opt.eps_high;
  PolicyLossStats st;
  std::size_t n = 0, clipped = 0, dual = 0;
  double kl2 = 0, ratio_sum = 0;
  for (std::size_t i = 0; i < B * L; ++i) {
    if (!mask[i]) {
      if (!dlogp_new.empty()) dlogp_new[i] = T(0);
      continue;
    }
    const double A = static_cast<double>(advantages[i]);
    const double lr = static_cast<double>(logp_new[i]) - static_cast<double>(logp_old[i]);
    const bool inside = std::abs(lr) <= opt.log_ratio_clamp;
    const double rho = std::exp(std::clamp(lr, -opt.log_ratio_clamp, opt.log_ratio_clamp));
    const double drho = inside ? rho : 0.0;
    const double u = -A * rho, v = -A * std::clamp(rho, lo, hi);
    double l = std::max(u, v);
    double g = v > u ? 0.0 : -A * drho;
    if (v > u) ++clipped;
    if (opt.dual_clip > 0 && A < 0 && -opt.dual_clip * A < l) {
      l = -opt.dual_clip * A;
      g = 0;
      ++dual;
    }
    st.loss += w[i] * l;
    if (!dlogp_new.empty()) dlogp_new[i] = static_cast<T>(w[i] * g);
    ++n;
    kl2 += lr * lr;
    ratio_sum += rho;
  }
  const auto nd = static_cast<double>(n > 0 ? n : 1);
  st.clipfrac = static_cast<double>(clipped) / nd;
  st.dual_clipfrac = static_cast<double>(dual) / nd;
  st.approxkl = 0.5 * kl2 / nd;
  st.ratio_mean = ratio_sum / nd;
  return st;
}

struct ValueLossOptions {
  std::optional<double> clip_range = 0.2;  // eps_v: TRL cliprange_value 0.2 (OpenRLHF value_clip
                                           // 0.5); nullopt = unclipped 0.5 (V - R)^2
  LossAggregation aggregation = LossAggregation::token_mean;  // TRL masked_mean
  std::size_t max_length = 0;
};

struct ValueLossStats {
  double loss = 0;      // loss/value_avg (without vf_coef)
  double clipfrac = 0;  // val/clipfrac_avg
};

// values (the critic's current V), values_old (V at rollout time), returns (R = A + V_old
// from gae), all (B, L); mask (B, L); dvalues (B, L) or empty.
template <class T>
ValueLossStats value_loss(std::span<const T> values, std::span<const T> values_old, std::span<const T> returns,
                          std::span<const std::uint8_t> mask, std::span<T> dvalues, std::size_t B, std::size_t L,
                          const ValueLossOptions& opt = {}) {
  constexpr const char* fn = "value_loss";
  RLXF_REQUIRE(B > 0 && L > 0, "empty shape (B, L) = (", B, ", ", L, ")");
  internal::require_size(fn, "values", values.size(), B * L, "(B, L)");
  internal::require_size(fn, "values_old", values_old.size(), B * L, "(B, L)");
  internal::require_size(fn, "returns", returns.size(), B * L, "(B, L)");
  internal::require_size(fn, "mask", mask.size(), B * L, "(B, L)");
  internal::require_size_or_empty(fn, "dvalues", dvalues.size(), B * L, "(B, L)");
  RLXF_REQUIRE(!opt.clip_range || (std::isfinite(*opt.clip_range) && *opt.clip_range >= 0), "clip_range = ",
               opt.clip_range.value_or(0), ", expected finite and >= 0");
  internal::require_mask_values(fn, mask, L);
  internal::require_finite(fn, "values", values, mask, L);
  internal::require_finite(fn, "values_old", values_old, mask, L);
  internal::require_finite(fn, "returns", returns, mask, L);
  const auto w = token_weights(mask, B, L, opt.aggregation, opt.max_length);
  ValueLossStats st;
  std::size_t n = 0, clipped = 0;
  for (std::size_t i = 0; i < B * L; ++i) {
    if (!mask[i]) {
      if (!dvalues.empty()) dvalues[i] = T(0);
      continue;
    }
    const double V = static_cast<double>(values[i]), R = static_cast<double>(returns[i]);
    const double d1 = V - R;
    double l = d1 * d1, g = d1;
    if (opt.clip_range) {
      const double Vo = static_cast<double>(values_old[i]);
      const double d2 = Vo + std::clamp(V - Vo, -*opt.clip_range, *opt.clip_range) - R;
      if (d2 * d2 > l) {  // the clipped branch: constant in V
        l = d2 * d2;
        g = 0;
        ++clipped;
      }
    }
    st.loss += 0.5 * w[i] * l;
    if (!dvalues.empty()) dvalues[i] = static_cast<T>(w[i] * g);
    ++n;
  }
  st.clipfrac = static_cast<double>(clipped) / static_cast<double>(n > 0 ? n : 1);
  return st;
}

}  // namespace rlxf::algo
