#pragma once
// Reward-model losses with their gradients, as plain functions over spans with explicit
// shapes. T is float or double; sums and the loss are computed in double, gradients are
// written in T. Gradients are OVERWRITTEN (not accumulated); pass an empty span to skip one.
// Spans do not deduce T from a std::vector: pass std::span<const T>(v) or name T,
// e.g. weighted_cross_entropy<float>(...).
//
// (a) Class-weighted two-class cross-entropy, the loss of a MET / NOT MET classifier head,
//     as PyTorch's F.cross_entropy(logits, y, weight=w) with reduction="mean":
//       nll_i = logsumexp(z_i0, z_i1) - z_{i,y_i} = softplus(z_{i,1-y_i} - z_{i,y_i})
//       L     = sum_i w_{y_i} nll_i / sum_i w_{y_i}
//       dL/dz_ic = w_{y_i} (softmax(z_i)_c - [c = y_i]) / sum_j w_{y_j}
//     balanced_class_weights gives scikit-learn's class_weight="balanced": w_c = n / (2 n_c).
// (b) Pairwise Bradley-Terry loss over scalar rewards (InstructGPT; Llama 2's RM adds a
//     per-pair margin m_k; TRL's optional centering term c * mean((r_c + r_r)^2)):
//       d_k = r_chosen_k - r_rejected_k
//       L   = (1/P) sum_k softplus(-(d_k - m_k)) + c (1/P) sum_k (r_chosen_k + r_rejected_k)^2
//     softplus(-x) = -log sigmoid(x), computed as max(-x, 0) + log1p(e^{-|x|}): exact for
//     |d| = 1000 and beyond. Gradients, with s_k = sigmoid(-(d_k - m_k)):
//       dL/dr_chosen_k = (-s_k + 2 c (r_c + r_r)_k) / P,  dL/dr_rejected_k = (s_k + 2 c (r_c + r_r)_k) / P.
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "rlxf/core/error.hpp"
#include "rlxf/reward/metrics.hpp"

namespace rlxf::reward {

// w_c = n / (2 n_c) for c in {0 = NOT MET, 1 = MET}, scikit-learn's
// compute_class_weight("balanced"). Both classes must be present (scikit-learn raises too).
inline std::array<double, 2> balanced_class_weights(std::span<const std::uint8_t> labels) {
  detail::check_labels("balanced_class_weights", labels);
  std::size_t n1 = 0;
  for (auto y : labels) n1 += y;
  const std::size_t n0 = labels.size() - n1;
  RLXF_REQUIRE(n0 > 0 && n1 > 0, "both classes must be present (", n0, " NOT MET, ", n1,
               " MET): a weight n / (2 n_c) needs n_c > 0");
  const auto n = static_cast<double>(labels.size());
  return {n / (2.0 * static_cast<double>(n0)), n / (2.0 * static_cast<double>(n1))};
}

// Class-weighted mean cross-entropy (see (a) above). logits (B, 2) row-major, column 1 = MET;
// labels (B), 0 or 1; class_weight (2) = {w_NOT_MET, w_MET}, or empty for weights 1 (the plain
// mean); dlogits (B, 2) receives dL/dlogits, or is empty. Returns L. Throws for B = 0, a bad
// label (naming the row), a negative or non-finite weight, or sum_i w_{y_i} = 0 (where
// PyTorch returns NaN).
template <class T>
double weighted_cross_entropy(std::span<const T> logits, std::span<const std::uint8_t> labels,
                              std::span<const double> class_weight, std::span<T> dlogits,
                              std::size_t B) {
  RLXF_REQUIRE(B > 0, "batch is empty");
  RLXF_REQUIRE(logits.size() == 2 * B, "logits has ", logits.size(), " entries, expected (B, 2) = ",
               2 * B);
  RLXF_REQUIRE(labels.size() == B, "labels has ", labels.size(), " entries, expected B = ", B);
  RLXF_REQUIRE(dlogits.empty() || dlogits.size() == 2 * B, "dlogits has ", dlogits.size(),
               " entries, expected (B, 2) = ", 2 * B, " or none");
  RLXF_REQUIRE(class_weight.empty() || class_weight.size() == 2, "class_weight has ",
               class_weight.size(), " entries, expected 2 (NOT MET, MET) or none");
  detail::check_labels("weighted_cross_entropy", labels);
  double w[2] = {1.0, 1.0};
  for (std::size_t c = 0; c < class_weight.size(); ++c) {
    RLXF_REQUIRE(std::isfinite(class_weight[c]) && class_weight[c] >= 0, "class_weight[", c,
                 "] = ", class_weight[c], ", expected finite and >= 0");
    w[c] = class_weight[c];
  }
  double total_w = 0, sum = 0;
  for (std::size_t i = 0; i < B; ++i) {
    const std::size_t y = labels[i];
    const double zy = static_cast<double>(logits[2 * i + y]);
    const double zo = static_cast<double>(logits[2 * i + 1 - y]);
    RLXF_REQUIRE(std::isfinite(zy) && std::isfinite(zo), "row ", i, " has a non-finite logit");
    total_w += w[y];
    sum += w[y] * detail::softplus(zo - zy);
  }
  RLXF_REQUIRE(total_w > 0, "the weights of the batch's labels sum to 0: the mean is undefined");
  if (!dlogits.empty()) {
    for (std::size_t i = 0; i < B; ++i) {
      const std::size_t y = labels[i];
      // softmax(z_i)_other = sigmoid(z_other - z_y); the target's entry is its negative.
      const double p_other = detail::sigmoid(static_cast<double>(logits[2 * i + 1 - y]) -
                                             static_cast<double>(logits[2 * i + y]));
      const double g = w[y] * p_other / total_w;
      dlogits[2 * i + 1 - y] = static_cast<T>(g);
      dlogits[2 * i + y] = static_cast<T>(-g);
    }
  }
  return sum / total_w;
}

struct BradleyTerryOptions {
  // c of TRL's center_rewards_coefficient: adds c * mean((r_c + r_r)^2), 0 = off
  // (0.01 is TRL's suggested value when on).
  double center_rewards_coefficient = 0;
};

struct PairwiseLoss {
  double loss = 0;      // L, including the centering term when on
  double accuracy = 0;  // fraction of pairs with r_chosen > r_rejected (ties count as wrong)
  double margin = 0;    // mean (r_chosen - r_rejected): TRL's logged "margin" (not the m_k)
};

// Bradley-Terry loss (see (b) above). r_chosen, r_rejected (P); margin (P) or empty for
// m = 0; d_chosen, d_rejected (P) receive dL/dr_chosen and dL/dr_rejected, or are empty.
// Throws for P = 0, mismatched sizes or a non-finite reward or margin (naming the pair).
template <class T>
PairwiseLoss bradley_terry_loss(std::span<const T> r_chosen, std::span<const T> r_rejected,
                                std::span<const T> margin, std::span<T> d_chosen,
                                std::span<T> d_rejected, const BradleyTerryOptions& opt = {}) {
  const std::size_t P = r_chosen.size();
  RLXF_REQUIRE(P > 0, "no pairs");
  RLXF_REQUIRE(r_rejected.size() == P, "r_rejected has ", r_rejected.size(),
               " entries but r_chosen has ", P);
  RLXF_REQUIRE(margin.empty() || margin.size() == P, "margin has ", margin.size(),
               " entries, expected ", P, " or none");
  RLXF_REQUIRE(d_chosen.empty() || d_chosen.size() == P, "d_chosen has ", d_chosen.size(),
               " entries, expected ", P, " or none");
  RLXF_REQUIRE(d_rejected.empty() || d_rejected.size() == P, "d_rejected has ", d_rejected.size(),
               " entries, expected ", P, " or none");
  RLXF_REQUIRE(std::isfinite(opt.center_rewards_coefficient) && opt.center_rewards_coefficient >= 0,
               "center_rewards_coefficient = ", opt.center_rewards_coefficient,
               ", expected finite and >= 0");
  const double c = opt.center_rewards_coefficient;
  const auto Pd = static_cast<double>(P);
  PairwiseLoss out;
  double bt = 0, center = 0, gap = 0;
  std::size_t correct = 0;
  for (std::size_t k = 0; k < P; ++k) {
    const auto rc = static_cast<double>(r_chosen[k]);
    const auto rr = static_cast<double>(r_rejected[k]);
    const double m = margin.empty() ? 0.0 : static_cast<double>(margin[k]);
    if (!std::isfinite(rc) || !std::isfinite(rr) || !std::isfinite(m))
      fail("bradley_terry_loss: pair ", k, " has a non-finite value (r_chosen ", rc,
           ", r_rejected ", rr, ", margin ", m, ")");
    const double d = rc - rr;
    const double x = d - m;
    bt += detail::softplus(-x);
    center += (rc + rr) * (rc + rr);
    gap += d;
    correct += rc > rr ? 1 : 0;
    const double s = detail::sigmoid(-x);
    const double gc = 2.0 * c * (rc + rr);
    if (!d_chosen.empty()) d_chosen[k] = static_cast<T>((-s + gc) / Pd);
    if (!d_rejected.empty()) d_rejected[k] = static_cast<T>((s + gc) / Pd);
  }
  out.loss = bt / Pd + c * center / Pd;
  out.accuracy = static_cast<double>(correct) / Pd;
  out.margin = gap / Pd;
  return out;
}

}  // namespace rlxf::reward
