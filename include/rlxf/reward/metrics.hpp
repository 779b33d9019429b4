#pragma once
// Binary classification metrics for a reward classifier that outputs P(MET), the
// probability of the positive class MET (label 1; NOT MET is label 0). One pass computes
// everything an evaluation report needs: confusion counts at a threshold, accuracy,
// precision / recall / F1 for MET, ROC AUC, log loss, Brier score, expected calibration
// error (ECE) and the reliability table behind it. Definitions, exactly as implemented
// (docs/reward.md repeats them; tests/test_reward_metrics.cpp checks them against
// scikit-learn 1.9.1 on tests/fixtures/reward/metrics.json):
//
//   predicted MET      p_i >= threshold  (the ">=" of scikit-learn's roc_curve and
//                      precision_recall_curve; a p exactly at the threshold counts as MET)
//   accuracy           (TP + TN) / n
//   precision          TP / (TP + FP), 0 when nothing is predicted MET (0/0 := 0)
//   recall             TP / (TP + FN), 0 when no label is MET          (0/0 := 0)
//   f1                 2 TP / (2 TP + FP + FN), 0 when TP = FP = FN = 0 (0/0 := 0)
//                      (scikit-learn's zero_division="warn" results, without the warning)
//   roc_auc            Mann-Whitney U / (P N): the probability that a random MET example
//                      scores above a random NOT MET one, ties counting 1/2. O(n log n)
//                      (one sort). NaN when a class is absent (as scikit-learn 1.9
//                      returns, with a warning there).
//   log_loss           -(1/n) sum_i ln q_i, q_i = p_i for MET and 1 - p_i for NOT MET,
//                      clamped to [eps, 1 - eps], eps = MetricOptions::log_loss_eps, by
//                      default the double machine epsilon 2^-52 ~ 2.2e-16 (scikit-learn since 1.3;
//                      earlier versions clamped at 1e-15, which the option reproduces)
//   brier              (1/n) sum_i (p_i - y_i)^2
//   reliability bins   B = calibration_bins equal-width bins on [0, 1] with edges
//                      e_k = k * (1.0 / B) (in double, e_B = 1); bin b holds the p with
//                      e_b < p <= e_{b+1}, bin 0 also p = 0. This is scikit-learn's
//                      calibration_curve(strategy="uniform") binning (np.searchsorted on the
//                      inner edges) and Guo et al.'s (2017) ECE binning, so p = 0.3 with
//                      B = 10 falls in (0.2, 0.3].
//   ece                sum_b (n_b / n) |mean_{i in b} y_i - mean_{i in b} p_i|, empty bins
//                      contributing 0.
//
// Inputs are validated (equal sizes, n > 0, p in [0, 1] and not NaN, labels 0 or 1); an
// invalid entry throws rlxf::Error naming its index.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "rlxf/core/error.hpp"

namespace rlxf::reward {

namespace detail {
// Numerically stable scalar functions, shared by calibration.hpp and losses.hpp.

// ln(1 + e^x) without overflow: max(x, 0) + log1p(e^{-|x|}). softplus(-1000) = 0 (the
// exact value, 5e-435, is below the smallest double), softplus(1000) = 1000.
inline double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }

// 1 / (1 + e^{-x}) without overflow, and with full relative accuracy for x << 0.
inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// Throws unless every label is 0 or 1 (naming the first offending index).
inline void check_labels(const char* func, std::span<const std::uint8_t> label) {
  for (std::size_t i = 0; i < label.size(); ++i)
    if (label[i] > 1)
      fail(func, ": label[", i, "] = ", static_cast<unsigned>(label[i]),
           ", expected 0 (NOT MET) or 1 (MET)");
}

// "0.1234", or "n/a" for NaN: the number format of the Markdown formatters.
inline std::string fmt(double v, int digits = 4) {
  if (std::isnan(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
}  // namespace detail

struct MetricOptions {
  double threshold = 0.5;                                       // MET iff p >= threshold
  std::size_t calibration_bins = 10;                            // equal-width bins, >= 1
  double log_loss_eps = std::numeric_limits<double>::epsilon();  // clamp of log_loss
};

// One equal-width bin of the reliability table: p in (lower, upper] (bin 0: [0, upper]).
// mean_predicted and fraction_met are NaN for an empty bin.
struct ReliabilityBin {
  double lower = 0, upper = 0;
  std::size_t count = 0;
  double mean_predicted = 0;  // mean p over the bin
  double fraction_met = 0;    // mean label over the bin (observed frequency of MET)
};

struct BinaryMetrics {
  std::size_t count = 0;                 // n
  std::size_t positives = 0;             // examples labelled MET (P)
  std::size_t negatives = 0;             // examples labelled NOT MET (N)
  std::size_t tp = 0, fp = 0, tn = 0, fn = 0;  // at `threshold`
  double threshold = 0.5;
  double accuracy = 0, precision = 0, recall = 0, f1 = 0;
  double roc_auc = 0;  // NaN when P = 0 or N = 0
  double log_loss = 0, brier = 0, ece = 0;
  std::vector<ReliabilityBin> reliability;  // calibration_bins entries, lowest p first
};

// ROC AUC of scores p against labels by the Mann-Whitney statistic, ties counting 1/2:
// (sum over MET examples i of #{NOT MET j : p_j < p_i} + #{NOT MET j : p_j = p_i} / 2) / (P N).
// O(n log n). NaN when a class is absent. Does not validate (binary_metrics does).
inline double roc_auc_mann_whitney(std::span<const double> p, std::span<const std::uint8_t> label) {
  const std::size_t n = p.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p[a] < p[b]; });
  // Walk groups of equal score upwards; `neg_below` counts NOT MET examples strictly below.
  double u = 0, neg_below = 0, pos_total = 0;
  for (std::size_t g = 0; g < n;) {
    std::size_t end = g;
    double pos = 0, neg = 0;
    while (end < n && p[order[end]] == p[order[g]]) {
      (label[order[end]] ? pos : neg) += 1;
      ++end;
    }
    u += pos * (neg_below + 0.5 * neg);
    neg_below += neg;
    pos_total += pos;
    g = end;
  }
  if (pos_total == 0 || neg_below == 0) return std::numeric_limits<double>::quiet_NaN();
  return u / (pos_total * neg_below);
}

// Index of the reliability bin of p (see the header comment): the number of inner edges
// e_1..e_{B-1} strictly below p, e_k = k * (1.0 / B), as np.searchsorted(edges, p) computes.
inline std::size_t reliability_bin(double p, std::size_t bins) {
  const double width = 1.0 / static_cast<double>(bins);
  // Candidate from the division, then corrected against the edges as computed, so that
  // values on (or one rounding away from) an edge land exactly where searchsorted puts them.
  auto b = static_cast<std::size_t>(std::max(0.0, std::ceil(p * static_cast<double>(bins)) - 1.0));
  b = std::min(b, bins - 1);
  auto edge = [&](std::size_t k) { return static_cast<double>(k) * width; };
  while (b > 0 && !(edge(b) < p)) --b;                // p must be above e_b
  while (b + 1 < bins && edge(b + 1) < p) ++b;        // and at most e_{b+1}
  return b;
}

// Every metric above for P(MET) `p_met` against `label` (1 = MET); both of length n >= 1.
inline BinaryMetrics binary_metrics(std::span<const double> p_met, std::span<const std::uint8_t> label,
                                    const MetricOptions& opt = {}) {
  RLXF_REQUIRE(p_met.size() == label.size(), "p_met has ", p_met.size(), " entries but label has ",
               label.size());
  RLXF_REQUIRE(!p_met.empty(), "no examples: the metrics are undefined for n = 0");
  RLXF_REQUIRE(opt.calibration_bins >= 1, "calibration_bins must be at least 1");
  RLXF_REQUIRE(!std::isnan(opt.threshold), "threshold is NaN");
  RLXF_REQUIRE(opt.log_loss_eps >= 0 && opt.log_loss_eps < 0.5, "log_loss_eps = ", opt.log_loss_eps,
               ", expected in [0, 0.5)");
  for (std::size_t i = 0; i < p_met.size(); ++i)
    if (!(p_met[i] >= 0.0 && p_met[i] <= 1.0))
      fail("binary_metrics: p_met[", i, "] = ", p_met[i], " is not a probability in [0, 1]");
  detail::check_labels("binary_metrics", label);

  const std::size_t n = p_met.size(), B = opt.calibration_bins;
  BinaryMetrics m;
  m.count = n;
  m.threshold = opt.threshold;
  std::vector<double> bin_p(B, 0.0), bin_y(B, 0.0);
  std::vector<std::size_t> bin_n(B, 0);
  double log_loss = 0, brier = 0;
  const double eps = opt.log_loss_eps;
  for (std::size_t i = 0; i < n; ++i) {
    const double p = p_met[i];
    const bool met = label[i] == 1;
    const bool pred = p >= opt.threshold;
    if (met) {
      ++m.positives;
      ++(pred ? m.tp : m.fn);
    } else {
      ++m.negatives;
      ++(pred ? m.fp : m.tn);
    }
    const double q = std::clamp(met ? p : 1.0 - p, eps, 1.0 - eps);
    log_loss -= std::log(q);
    const double d = p - (met ? 1.0 : 0.0);
    brier += d * d;
    const std::size_t b = reliability_bin(p, B);
    ++bin_n[b];
    bin_p[b] += p;
    bin_y[b] += met ? 1.0 : 0.0;
  }
  const auto nd = static_cast<double>(n);
  auto ratio = [](std::size_t num, std::size_t den) {
    return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den);
  };
  m.accuracy = ratio(m.tp + m.tn, n);
  m.precision = ratio(m.tp, m.tp + m.fp);
  m.recall = ratio(m.tp, m.tp + m.fn);
  m.f1 = ratio(2 * m.tp, 2 * m.tp + m.fp + m.fn);
  m.roc_auc = roc_auc_mann_whitney(p_met, label);
  m.log_loss = log_loss / nd;
  m.brier = brier / nd;

  m.reliability.resize(B);
  const double width = 1.0 / static_cast<double>(B);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (std::size_t b = 0; b < B; ++b) {
    auto& r = m.reliability[b];
    r.lower = static_cast<double>(b) * width;
    r.upper = b + 1 == B ? 1.0 : static_cast<double>(b + 1) * width;
    r.count = bin_n[b];
    if (bin_n[b] == 0) {
      r.mean_predicted = r.fraction_met = nan;
      continue;
    }
    const auto c = static_cast<double>(bin_n[b]);
    r.mean_predicted = bin_p[b] / c;
    r.fraction_met = bin_y[b] / c;
    m.ece += (c / nd) * std::abs(r.fraction_met - r.mean_predicted);
  }
  return m;
}

// The reliability table as Markdown: one row per bin with its range, count, mean predicted
// P(MET), observed fraction MET and their gap (observed - predicted; "n/a" for empty bins).
inline std::string format_reliability_table(const BinaryMetrics& m) {
  std::string s = "| bin | P(MET) range | count | mean predicted | observed MET | gap |\n"
                  "|---:|:---|---:|---:|---:|---:|\n";
  for (std::size_t b = 0; b < m.reliability.size(); ++b) {
    const auto& r = m.reliability[b];
    s += "| " + std::to_string(b) + " | " + (b == 0 ? "[" : "(") + detail::fmt(r.lower, 3) + ", " +
         detail::fmt(r.upper, 3) + "] | " + std::to_string(r.count) + " | " +
         detail::fmt(r.mean_predicted) + " | " + detail::fmt(r.fraction_met) + " | " +
         detail::fmt(r.fraction_met - r.mean_predicted) + " |\n";
  }
  return s;
}

// A Markdown report: a metrics table, the confusion counts and the reliability table.
inline std::string to_markdown(const BinaryMetrics& m) {
  std::string s = "| metric | value |\n|:---|---:|\n";
  auto row = [&](const std::string& name, const std::string& v) { s += "| " + name + " | " + v + " |\n"; };
  row("examples", std::to_string(m.count) + " (" + std::to_string(m.positives) + " MET, " +
                      std::to_string(m.negatives) + " NOT MET)");
  row("threshold (MET iff P(MET) >= t)", detail::fmt(m.threshold));
  row("accuracy", detail::fmt(m.accuracy));
  row("precision (MET)", detail::fmt(m.precision));
  row("recall (MET)", detail::fmt(m.recall));
  row("F1 (MET)", detail::fmt(m.f1));
  row("ROC AUC", detail::fmt(m.roc_auc));
  row("log loss", detail::fmt(m.log_loss));
  row("Brier score", detail::fmt(m.brier));
  row("ECE (" + std::to_string(m.reliability.size()) + " bins)", detail::fmt(m.ece));
  s += "\n| | predicted MET | predicted NOT MET |\n|:---|---:|---:|\n";
  s += "| MET | " + std::to_string(m.tp) + " | " + std::to_string(m.fn) + " |\n";
  s += "| NOT MET | " + std::to_string(m.fp) + " | " + std::to_string(m.tn) + " |\n\n";
  s += format_reliability_table(m);
  return s;
}

// One line for a log, e.g.
// "n=300 (MET 140) acc=0.8133 prec=0.8000 rec=0.7500 f1=0.7742 auc=0.8812 logloss=0.4301
//  brier=0.1402 ece=0.0410" (on one line; "n/a" for an undefined AUC).
inline std::string summary_line(const BinaryMetrics& m) {
  return "n=" + std::to_string(m.count) + " (MET " + std::to_string(m.positives) + ")" +
         " acc=" + detail::fmt(m.accuracy) + " prec=" + detail::fmt(m.precision) +
         " rec=" + detail::fmt(m.recall) + " f1=" + detail::fmt(m.f1) +
         " auc=" + detail::fmt(m.roc_auc) + " logloss=" + detail::fmt(m.log_loss) +
         " brier=" + detail::fmt(m.brier) + " ece=" + detail::fmt(m.ece);
}

}  // namespace rlxf::reward
