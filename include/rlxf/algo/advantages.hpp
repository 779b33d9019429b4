#pragma once
// Rewards, advantages and returns (docs/algorithms.md has every formula with its source).
// Shapes: (B, L) = B response sequences of L token positions, row-major; mask (B, L) with
// 1 = valid response token. All sums are in double; outputs are written in T and
// OVERWRITTEN. Inputs under mask 0 are never read; outputs there are 0.
//
// (a) ppo_token_rewards: r_t = -beta kl_t on valid tokens, plus the score on the LAST valid
//     token of each row (TRL puts it one position after EOS: a quirk we do not copy).
//     apply_missing_eos_penalty subtracts p from the scores of rows without EOS (the caller
//     applies it before ppo_token_rewards).
// (b) gae: delta_t = r_t + gamma V_{t+1} - V_t with V = 0 past the last valid token,
//     A_t = delta_t + gamma lambda A_{t+1}, returns R_t = A_t + V_t (before any whitening).
//     discounted_returns: G_t = sum_{s>=t} gamma^{s-t} r_s (REINFORCE++'s A_t with gamma = 1).
// (c) masked_whiten: (x - mean) / sqrt(var + 1e-8) over the masked tokens of the batch, pads
//     0; shift_mean = false adds the mean back (TRL / OpenAI whiten). Variance unbiased by
//     default (TRL masked_var); unbiased = false gives OpenRLHF's / OpenAI's.
// (d) RunningMoments: count, mean and M2 merged batch by batch (Chan et al.), a plain state.
// (e) grpo_advantages: per group of G consecutive samples (r - mean_g) / (std_g + 1e-4),
//     std with Bessel's correction (torch.std, as TRL and ALGORITHMS.md §5);
//     rloo_advantages: A_i = r_i - (sum_{j in g} r_j - r_i) / (G - 1);
//     kl_penalised_sequence_rewards: r_i = score_i - beta sum_t kl_t (RLOO's reward).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "rlxf/algo/validation.hpp"
#include "rlxf/core/error.hpp"

namespace rlxf::algo {

// ---------------------------------------------------------------------------------------
// (a) Per-token PPO rewards
// ---------------------------------------------------------------------------------------

// Statistics TRL logs with these names (means over the B sequences).
struct TokenRewardStats {
  double kl = 0;                // objective/kl: mean of sum_t kl_t
  double non_score_reward = 0;  // objective/non_score_reward: mean of sum_t -beta kl_t
  double scores = 0;            // objective/scores: mean score
  double rlhf_reward = 0;       // objective/rlhf_reward: scores + non_score_reward
};

// scores (B) -= penalty where has_eos[b] == 0 (TRL's missing_eos_penalty). penalty >= 0.
template <class T>
void apply_missing_eos_penalty(std::span<T> scores, std::span<const std::uint8_t> has_eos, double penalty) {
  internal::require_size("apply_missing_eos_penalty", "has_eos", has_eos.size(), scores.size(), "(B)");
  RLXF_REQUIRE(std::isfinite(penalty) && penalty >= 0, "penalty = ", penalty, ", expected finite and >= 0");
  for (std::size_t b = 0; b < scores.size(); ++b)
    if (!has_eos[b]) scores[b] = static_cast<T>(static_cast<double>(scores[b]) - penalty);
}

// kl (B, L) per-token KL estimates (token_kl in kl.hpp, k1 for TRL's default); scores (B);
// mask (B, L), each row's valid tokens contiguous and at least one; rewards (B, L) output.
template <class T>
TokenRewardStats ppo_token_rewards(std::span<const T> kl, std::span<const T> scores,
                                   std::span<const std::uint8_t> mask, double beta, std::span<T> rewards,
                                   std::size_t B, std::size_t L) {
  constexpr const char* fn = "ppo_token_rewards";
  RLXF_REQUIRE(B > 0 && L > 0, "empty shape (B, L) = (", B, ", ", L, ")");
  internal::require_size(fn, "kl", kl.size(), B * L, "(B, L)");
  internal::require_size(fn, "scores", scores.size(), B, "(B)");
  internal::require_size(fn, "mask", mask.size(), B * L, "(B, L)");
  internal::require_size(fn, "rewards", rewards.size(), B * L, "(B, L)");
  internal::require_finite_option(fn, "beta", beta);
  internal::require_mask_values(fn, mask, L);
  internal::require_finite(fn, "kl", kl, mask, L);
  internal::require_finite(fn, "scores", scores);
  TokenRewardStats st;
  for (std::size_t b = 0; b < B; ++b) {
    const auto [first, last] = internal::valid_span(fn, mask, b, L);
    if (first == last) fail(fn, ": row ", b, " has no valid response token: its score has nowhere to go");
    double kl_sum = 0;
    for (std::size_t t = 0; t < L; ++t) {
      const std::size_t i = b * L + t;
      if (!mask[i]) {
        rewards[i] = T(0);
        continue;
      }
      const double k = static_cast<double>(kl[i]);
      kl_sum += k;
      double r = -beta * k;
      if (t + 1 == last) r += static_cast<double>(scores[b]);
      rewards[i] = static_cast<T>(r);
    }
    st.kl += kl_sum;
    st.non_score_reward -= beta * kl_sum;
    st.scores += static_cast<double>(scores[b]);
  }
  const auto Bd = static_cast<double>(B);
  st.kl /= Bd;
  st.non_score_reward /= Bd;
  st.scores /= Bd;
  st.rlhf_reward = st.scores + st.non_score_reward;
  return st;
}

// ---------------------------------------------------------------------------------------
// (b) GAE and discounted returns
// ---------------------------------------------------------------------------------------

struct GaeOptions {
  double gamma = 1.0;    // TRL and OpenRLHF
  double lambda = 0.95;  // TRL (OpenRLHF: 1.0)
};

// rewards, values (B, L); mask (B, L), valid tokens of a row contiguous (an empty row gives
// zeros); advantages, returns (B, L) outputs (returns may be empty). Returns = A + V.
template <class T>
void gae(std::span<const T> rewards, std::span<const T> values, std::span<const std::uint8_t> mask,
         std::span<T> advantages, std::span<T> returns, std::size_t B, std::size_t L,
         const GaeOptions& opt = {}) {
  constexpr const char* fn = "gae";
  RLXF_REQUIRE(B > 0 && L > 0, "empty shape (B, L) = (", B, ", ", L, ")");
  internal::require_size(fn, "rewards", rewards.size(), B * L, "(B, L)");
  internal::require_size(fn, "values", values.size(), B * L, "(B, L)");
  internal::require_size(fn, "mask", mask.size(), B * L, "(B, L)");
  internal::require_size(fn, "advantages", advantages.size(), B * L, "(B, L)");
  internal::require_size_or_empty(fn, "returns", returns.size(), B * L, "(B, L)");
  RLXF_REQUIRE(std::isfinite(opt.gamma) && opt.gamma >= 0 && opt.gamma <= 1, "gamma = ", opt.gamma,
               ", expected in [0, 1]");
  RLXF_REQUIRE(std::isfinite(opt.lambda) && opt.lambda >= 0 && opt.lambda <= 1, "lambda = ", opt.lambda,
               ", expected in [0, 1]");
  internal::require_mask_values(fn, mask, L);
  internal::require_finite(fn, "rewards", rewards, mask, L);
  internal::require_finite(fn, "values", values, mask, L);
  for (std::size_t b = 0; b < B; ++b) {
    const auto [first, last] = internal::valid_span(fn, mask, b, L);
    double next_a = 0, next_v = 0;  // past the end: V = 0, A = 0
    for (std::size_t t = L; t-- > 0;) {
      const std::size_t i = b * L + t;
      if (t < first || t >= last) {
        advantages[i] = T(0);
        if (!returns.empty()) returns[i] = T(0);
        continue;
      }
      const double v = static_cast<double>(values[i]);
      const double delta = static_cast<double>(rewards[i]) + opt.gamma * next_v - v;
      const double a = delta + opt.gamma * opt.lambda * next_a;
      advantages[i] = static_cast<T>(a);
      if (!returns.empty()) returns[i] = static_cast<T>(a + v);
      next_a = a;
      next_v = v;
    }
  }
}

// G_t = r_t + gamma G_{t+1} over each row's contiguous valid tokens (0 past the end and on
// pads). rewards (B, L); mask (B, L); out (B, L).
template <class T>
void discounted_returns(std::span<const T> rewards, std::span<const std::uint8_t> mask, std::span<T> out,
                        std::size_t B, std::size_t L, double gamma = 1.0) {
  constexpr const char* fn = "discounted_returns";
  RLXF_REQUIRE(B > 0 && L > 0, "empty shape (B, L) = (", B, ", ", L, ")");
  internal::require_size(fn, "rewards", rewards.size(), B * L, "(B, L)");
  internal::require_size(fn, "mask", mask.size(), B * L, "(B, L)");
  internal::require_size(fn, "out", out.size(), B * L, "(B, L)");
  RLXF_REQUIRE(std::isfinite(gamma) && gamma >= 0 && gamma <= 1, "gamma = ", gamma, ", expected in [0, 1]");
  internal::require_mask_values(fn, mask, L);
  internal::require_finite(fn, "rewards", rewards, mask, L);
  for (std::size_t b = 0; b < B; ++b) {
    const auto [first, last] = internal::valid_span(fn, mask, b, L);
    double g = 0;
    for (std::size_t t = L; t-- > 0;) {
      const std::size_t i = b * L + t;
      if (t < first || t >= last) {
        out[i] = T(0);
        continue;
      }
      g = static_cast<double>(rewards[i]) + gamma * g;
      out[i] = static_cast<T>(g);
    }
  }
}

// ---------------------------------------------------------------------------------------
// (c) Masked whitening
// ---------------------------------------------------------------------------------------

struct WhitenOptions {
  bool shift_mean = true;  // false: (x - mean) / sqrt(var + eps) + mean (TRL, OpenAI; rewards)
  bool unbiased = true;    // Bessel's correction n / (n - 1): TRL masked_var's default
  double eps = 1e-8;       // TRL, OpenAI (OpenRLHF clamps var at 1e-8 instead)
};

struct WhitenStats {
  double mean = 0, var = 0;  // the statistics used
  std::size_t count = 0;     // valid tokens
};

// x (N), e.g. (B, L) flattened; mask (N) or empty for all valid; out (N) (may be x's own
// buffer). Needs at least one valid token, two with unbiased.
template <class T>
WhitenStats masked_whiten(std::span<const T> x, std::span<const std::uint8_t> mask, std::span<T> out,
                          const WhitenOptions& opt = {}) {
  constexpr const char* fn = "masked_whiten";
  const std::size_t N = x.size();
  internal::require_size_or_empty(fn, "mask", mask.size(), N, "x's size");
  internal::require_size(fn, "out", out.size(), N, "x's size");
  internal::require_finite_option(fn, "eps", opt.eps);
  RLXF_REQUIRE(opt.eps >= 0, "eps = ", opt.eps, ", expected >= 0");
  internal::require_mask_values(fn, mask, 0);
  internal::require_finite(fn, "x", x, mask);
  WhitenStats st;
  double sum = 0;
  for (std::size_t i = 0; i < N; ++i)
    if (mask.empty() || mask[i]) {
      sum += static_cast<double>(x[i]);
      ++st.count;
    }
  RLXF_REQUIRE(st.count >= (opt.unbiased ? 2u : 1u), "only ", st.count, " valid entries: the ",
               opt.unbiased ? "unbiased " : "", "variance is undefined");
  const auto n = static_cast<double>(st.count);
  st.mean = sum / n;
  double ss = 0;
  for (std::size_t i = 0; i < N; ++i)
    if (mask.empty() || mask[i]) {
      const double d = static_cast<double>(x[i]) - st.mean;
      ss += d * d;
    }
  st.var = ss / (opt.unbiased ? n - 1.0 : n);
  const double scale = 1.0 / std::sqrt(st.var + opt.eps);
  RLXF_REQUIRE(std::isfinite(scale), "variance ", st.var, " + eps ", opt.eps, " is 0: nothing to divide by");
  for (std::size_t i = 0; i < N; ++i) {
    if (!mask.empty() && !mask[i]) {
      out[i] = T(0);
      continue;
    }
    double w = (static_cast<double>(x[i]) - st.mean) * scale;
    if (!opt.shift_mean) w += st.mean;
    out[i] = static_cast<T>(w);
  }
  return st;
}

// ---------------------------------------------------------------------------------------
// (d) Running moments
// ---------------------------------------------------------------------------------------

// Plain state for checkpoints: count, mean and M2 = sum (x - mean)^2 of everything seen.
struct RunningMomentsState {
  std::uint64_t count = 0;
  double mean = 0;
  double m2 = 0;
};

class RunningMoments {
 public:
  RunningMoments() = default;
  static RunningMoments from_state(const RunningMomentsState& s) {
    RLXF_REQUIRE(std::isfinite(s.mean) && std::isfinite(s.m2) && s.m2 >= 0, "state has mean ", s.mean,
                 ", m2 ", s.m2, ": expected finite and m2 >= 0");
    RLXF_REQUIRE(s.count > 0 || (s.mean == 0 && s.m2 == 0), "state with count 0 must have mean = m2 = 0");
    RunningMoments r;
    r.s_ = s;
    return r;
  }
  const RunningMomentsState& state() const noexcept { return s_; }

  // Merges a batch: its mean and M2 by two passes, then Chan's parallel combination
  //   n = n_a + n_b, d = mean_b - mean_a, mean = mean_a + d n_b / n,
  //   M2 = M2_a + M2_b + d^2 n_a n_b / n.
  template <class T>
  void update(std::span<const T> xs) {
    internal::require_finite("update", "xs", xs);
    if (xs.empty()) return;
    const auto nb = static_cast<double>(xs.size());
    double mb = 0;
    for (auto x : xs) mb += static_cast<double>(x);
    mb /= nb;
    double m2b = 0;
    for (auto x : xs) {
      const double d = static_cast<double>(x) - mb;
      m2b += d * d;
    }
    merge({static_cast<std::uint64_t>(xs.size()), mb, m2b});
  }
  // Merges another accumulator's state (e.g. another worker's).
  void merge(const RunningMomentsState& o) {
    if (o.count == 0) return;
    if (s_.count == 0) {
      s_ = o;
      return;
    }
    const auto na = static_cast<double>(s_.count), nb = static_cast<double>(o.count);
    const double n = na + nb, d = o.mean - s_.mean;
    s_.mean += d * nb / n;
    s_.m2 += o.m2 + d * d * na * nb / n;
    s_.count += o.count;
  }

  std::uint64_t count() const noexcept { return s_.count; }
  double mean() const noexcept { return s_.mean; }
  // M2 / (n - 1); needs n >= 2.
  double variance() const {
    RLXF_REQUIRE(s_.count >= 2, "count = ", s_.count, ": the unbiased variance needs 2 values");
    return s_.m2 / static_cast<double>(s_.count - 1);
  }
  // M2 / n; needs n >= 1.
  double population_variance() const {
    RLXF_REQUIRE(s_.count >= 1, "no values seen");
    return s_.m2 / static_cast<double>(s_.count);
  }
  double stddev() const { return std::sqrt(variance()); }

  // out = (x - mean) / sqrt(var + eps) (shift_mean) or x / sqrt(var + eps), var unbiased:
  // TRL's score scaling (use_score_scaling, use_score_norm) with its unbiased running std.
  template <class T>
  void normalize(std::span<const T> x, std::span<T> out, bool shift_mean = true, double eps = 1e-8) const {
    internal::require_size("normalize", "out", out.size(), x.size(), "x's size");
    internal::require_finite("normalize", "x", x);
    RLXF_REQUIRE(std::isfinite(eps) && eps >= 0, "eps = ", eps, ", expected finite and >= 0");
    const double var = variance();
    const double scale = 1.0 / std::sqrt(var + eps);
    RLXF_REQUIRE(std::isfinite(scale), "variance ", var, " + eps ", eps, " is 0");
    for (std::size_t i = 0; i < x.size(); ++i)
      out[i] = static_cast<T>((static_cast<double>(x[i]) - (shift_mean ? s_.mean : 0.0)) * scale);
  }

 private:
  RunningMomentsState s_;
};

// ---------------------------------------------------------------------------------------
// (e) Group-relative advantages (GRPO) and the leave-one-out baseline (RLOO)
// ---------------------------------------------------------------------------------------

// TRL GRPOConfig.scale_rewards.
enum class GroupScale {
  group,  // divide by the group's std (TRL default, GRPO paper)
  batch,  // divide by the std of all rewards of the batch (TRL "batch", PPO Lite)
  none,   // no division (Dr. GRPO)
};

struct GroupAdvantageOptions {
  GroupScale scale = GroupScale::group;
  double eps = 1e-4;  // TRL: A = (r - mean) / (std + 1e-4)
};

// rewards (B), B = n_groups * G, samples of one prompt consecutive (sample i in group i / G);
// advantages (B) output. std = sqrt(sum (r - mean)^2 / (n - 1)) (Bessel, torch.std), so
// G >= 2 (and B >= 2 for batch scaling).
template <class T>
void grpo_advantages(std::span<const T> rewards, std::span<T> advantages, std::size_t G,
                     const GroupAdvantageOptions& opt = {}) {
  constexpr const char* fn = "grpo_advantages";
  const std::size_t B = rewards.size();
  RLXF_REQUIRE(G >= 2, "group size G = ", G, ": a group needs at least 2 samples (Bessel std)");
  RLXF_REQUIRE(B > 0 && B % G == 0, "rewards has ", B, " entries, not a positive multiple of G = ", G);
  internal::require_size(fn, "advantages", advantages.size(), B, "rewards' size");
  internal::require_finite_option(fn, "eps", opt.eps);
  RLXF_REQUIRE(opt.eps >= 0, "eps = ", opt.eps, ", expected >= 0");
  internal::require_finite(fn, "rewards", rewards);
  auto mean_std = [&](std::size_t begin, std::size_t n, double& mean, double& sd) {
    double s = 0;
    for (std::size_t i = begin; i < begin + n; ++i) s += static_cast<double>(rewards[i]);
    mean = s / static_cast<double>(n);
    double ss = 0;
    for (std::size_t i = begin; i < begin + n; ++i) {
      const double d = static_cast<double>(rewards[i]) - mean;
      ss += d * d;
    }
    sd = std::sqrt(ss / static_cast<double>(n - 1));
  };
  double batch_mean = 0, batch_std = 0;
  if (opt.scale == GroupScale::batch) mean_std(0, B, batch_mean, batch_std);
  std::vector<double> a(B);
  for (std::size_t g = 0; g < B / G; ++g) {
    double m = 0, sd = 0;
    mean_std(g * G, G, m, sd);
    const double denom = opt.scale == GroupScale::group   ? sd + opt.eps
                         : opt.scale == GroupScale::batch ? batch_std + opt.eps
                                                          : 1.0;
    RLXF_REQUIRE(denom > 0, "group ", g, ": std + eps = 0 (all rewards equal and eps = 0)");
    for (std::size_t i = g * G; i < (g + 1) * G; ++i) a[i] = (static_cast<double>(rewards[i]) - m) / denom;
  }
  for (std::size_t i = 0; i < B; ++i) advantages[i] = static_cast<T>(a[i]);  // out may alias rewards
}

// A_i = r_i - (sum_{j in group(i)} r_j - r_i) / (G - 1). rewards (B), B = n_groups * G,
// consecutive groups; advantages (B) output (may alias rewards). G >= 2.
template <class T>
void rloo_advantages(std::span<const T> rewards, std::span<T> advantages, std::size_t G) {
  constexpr const char* fn = "rloo_advantages";
  const std::size_t B = rewards.size();
  RLXF_REQUIRE(G >= 2, "group size G = ", G, ": the leave-one-out baseline needs at least 2 samples");
  RLXF_REQUIRE(B > 0 && B % G == 0, "rewards has ", B, " entries, not a positive multiple of G = ", G);
  internal::require_size(fn, "advantages", advantages.size(), B, "rewards' size");
  internal::require_finite(fn, "rewards", rewards);
  std::vector<double> a(B);
  for (std::size_t g = 0; g < B / G; ++g) {
    double s = 0;
    for (std::size_t i = g * G; i < (g + 1) * G; ++i) s += static_cast<double>(rewards[i]);
    for (std::size_t i = g * G; i < (g + 1) * G; ++i) {
      const double r = static_cast<double>(rewards[i]);
      a[i] = r - (s - r) / static_cast<double>(G - 1);
    }
  }
  for (std::size_t i = 0; i < B; ++i) advantages[i] = static_cast<T>(a[i]);
}

// RLOO's sequence reward with the KL in it (TRL RLOOTrainer, token_level_kl = false):
// out_b = scores_b - beta sum_t mask kl_t. kl (B, L) per-token estimates (k1 of the rollout
// policy vs the reference); scores (B); mask (B, L); out (B).
template <class T>
void kl_penalised_sequence_rewards(std::span<const T> scores, std::span<const T> kl,
                                   std::span<const std::uint8_t> mask, double beta, std::span<T> out,
                                   std::size_t B, std::size_t L) {
  constexpr const char* fn = "kl_penalised_sequence_rewards";
  RLXF_REQUIRE(B > 0, "batch is empty");
  internal::require_size(fn, "scores", scores.size(), B, "(B)");
  internal::require_size(fn, "kl", kl.size(), B * L, "(B, L)");
  internal::require_size(fn, "mask", mask.size(), B * L, "(B, L)");
  internal::require_size(fn, "out", out.size(), B, "(B)");
  internal::require_finite_option(fn, "beta", beta);
  internal::require_mask_values(fn, mask, L);
  internal::require_finite(fn, "scores", scores);
  internal::require_finite(fn, "kl", kl, mask, L);
  for (std::size_t b = 0; b < B; ++b) {
    double s = 0;
    for (std::size_t t = 0; t < L; ++t)
      if (mask[b * L + t]) s += static_cast<double>(kl[b * L + t]);
    out[b] = static_cast<T>(static_cast<double>(scores[b]) - beta * s);
  }
}

}  // namespace rlxf::algo
