#pragma once
// DPO-family losses over per-sequence log-probs (docs/algorithms.md). Inputs are P pairs of the
// policy's and the reference's log-probs of the chosen (y_w) and rejected (y_l) responses:
//   h_k = (pc_k - rc_k) - (pr_k - rr_k)
//   sigmoid (DPO, Rafailov et al.; cDPO with label smoothing eps):
//     l_k = -(1 - eps) log sigma(beta h_k) - eps log sigma(-beta h_k)
//         = (1 - eps) softplus(-beta h_k) + eps softplus(beta h_k)
//     dl/dh = beta (-(1 - eps) sigma(-beta h) + eps sigma(beta h))
//   ipo (Azar et al.): l_k = (h_k - 1 / (2 beta))^2,  dl/dh = 2 (h - 1 / (2 beta))
//   L = (1/P) sum_k l_k;  dL/dpc_k = dl/dh_k / P,  dL/dpr_k = -dl/dh_k / P.
// The log-probs are whatever the caller passes: SUMS over response tokens for DPO/cDPO (TRL,
// OpenRLHF) and for IPO as OpenRLHF does. TRL's IPO divides each sequence's log-probs by its
// number of response tokens first; to get it, pass logp / n and multiply the returned
// gradients by 1 / n (docs/algorithms.md says more).
// Metrics (TRL names): rewards/chosen = mean beta (pc - rc), rewards/rejected = mean
// beta (pr - rr), rewards/margins = their mean difference, rewards/accuracies = mean
// 1[chosen reward > rejected reward] (ties count as wrong), logps/chosen, logps/rejected.
#include <cmath>
#include <cstddef>
#include <span>

#include "rlxf/algo/validation.hpp"
#include "rlxf/core/error.hpp"

namespace rlxf::algo {

enum class PreferenceLossType {
  sigmoid,  // DPO; with label_smoothing > 0, cDPO
  ipo,      // IPO
};

struct DpoOptions {
  double beta = 0.1;            // TRL and OpenRLHF (IPO: beta is the tau of the paper)
  double label_smoothing = 0;   // cDPO's eps in [0, 0.5); sigmoid only
  PreferenceLossType loss = PreferenceLossType::sigmoid;
};

struct DpoStats {
  double loss = 0;
  double rewards_chosen = 0;
  double rewards_rejected = 0;
  double rewards_margins = 0;
  double rewards_accuracies = 0;
  double logps_chosen = 0;
  double logps_rejected = 0;
};

// policy_chosen, policy_rejected, ref_chosen, ref_rejected (P); d_chosen, d_rejected (P)
// receive dL/dpolicy_chosen and dL/dpolicy_rejected, or are empty.
template <class T>
DpoStats dpo_loss(std::span<const T> policy_chosen, std::span<const T> policy_rejected,
                  std::span<const T> ref_chosen, std::span<const T> ref_rejected, std::span<T> d_chosen,
                  std::span<T> d_rejected, const DpoOptions& opt = {}) {
  constexpr const char* fn = "dpo_loss";
  const std::size_t P = policy_chosen.size();
  RLXF_REQUIRE(P > 0, "no pairs");
  internal::require_size(fn, "policy_rejected", policy_rejected.size(), P, "(P)");
  internal::require_size(fn, "ref_chosen", ref_chosen.size(), P, "(P)");
  internal::require_size(fn, "ref_rejected", ref_rejected.size(), P, "(P)");
  internal::require_size_or_empty(fn, "d_chosen", d_chosen.size(), P, "(P)");
  internal::require_size_or_empty(fn, "d_rejected", d_rejected.size(), P, "(P)");
  internal::require_finite_option(fn, "beta", opt.beta, true);
  RLXF_REQUIRE(std::isfinite(opt.label_smoothing) && opt.label_smoothing >= 0 && opt.label_smoothing < 0.5,
               "label_smoothing = ", opt.label_smoothing, ", expected in [0, 0.5)");
  RLXF_REQUIRE(opt.loss == PreferenceLossType::sigmoid || opt.label_smoothing == 0,
               "label_smoothing applies to the sigmoid loss only");
  internal::require_finite(fn, "policy_chosen", policy_chosen);
  internal::require_finite(fn, "policy_rejected", policy_rejected);
  internal::require_finite(fn, "ref_chosen", ref_chosen);
  internal::require_finite(fn, "ref_rejected", ref_rejected);
  const double beta = opt.beta, eps = opt.label_smoothing, Pd = static_cast<double>(P);
  DpoStats st;
  std::size_t correct = 0;
  for (std::size_t k = 0; k < P; ++k) {
    const double pc = static_cast<double>(policy_chosen[k]), pr = static_cast<double>(policy_rejected[k]);
    const double cr = pc - static_cast<double>(ref_chosen[k]);
    const double rr = pr - static_cast<double>(ref_rejected[k]);
    const double h = cr - rr;
    double l = 0, dl = 0;
    if (opt.loss == PreferenceLossType::sigmoid) {
      const double x = beta * h;
      l = (1 - eps) * internal::softplus(-x) + (eps > 0 ? eps * internal::softplus(x) : 0.0);
      dl = beta * (-(1 - eps) * internal::sigmoid(-x) + eps * internal::sigmoid(x));
    } else {
      const double d = h - 1.0 / (2.0 * beta);
      l = d * d;
      dl = 2.0 * d;
    }
    st.loss += l;
    if (!d_chosen.empty()) d_chosen[k] = static_cast<T>(dl / Pd);
    if (!d_rejected.empty()) d_rejected[k] = static_cast<T>(-dl / Pd);
    st.rewards_chosen += beta * cr;
    st.rewards_rejected += beta * rr;
    correct += beta * cr > beta * rr ? 1 : 0;
    st.logps_chosen += pc;
    st.logps_rejected += pr;
  }
  st.loss /= Pd;
  st.rewards_chosen /= Pd;
  st.rewards_rejected /= Pd;
  st.rewards_margins = st.rewards_chosen - st.rewards_rejected;
  st.rewards_accuracies = static_cast<double>(correct) / Pd;
  st.logps_chosen /= Pd;
  st.logps_rejected /= Pd;
  return st;
}

}  // namespace rlxf::algo
