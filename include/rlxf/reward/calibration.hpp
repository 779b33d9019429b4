#pragma once
// Temperature scaling (Guo et al., 2017, "On calibration of modern neural networks") for a
// binary MET / NOT MET classifier scored by a logit z: P(MET) = sigmoid(z / T). One scalar
// T > 0 is fitted on held-out data by minimising the mean negative log-likelihood
//   NLL(T) = (1/n) sum_i [ softplus(z_i / T) - y_i z_i / T ],   y_i = 1 for MET,
// which leaves the ranking (hence ROC AUC and accuracy at threshold 0.5) unchanged.
//
// A two-logit classifier (softmax over (z0, z1), class 1 = MET) is the same problem:
// softmax(z / T)_1 = sigmoid((z1 - z0) / T), so its logit of MET is z1 - z0 and the same T
// applies to both logits (the *_two_class functions do that subtraction).
//
// Fitting. With a = 1/T, NLL is convex in a:
//   NLL'(a)  = (1/n) sum_i (sigmoid(a z_i) - y_i) z_i,
//   NLL''(a) = (1/n) sum_i sigmoid(a z_i) (1 - sigmoid(a z_i)) z_i^2 >= 0,
// so NLL' is nondecreasing and the minimiser over the allowed range
// [1/max_temperature, 1/min_temperature] is found by safeguarded Newton on NLL'(a) = 0: a
// bracket [lo, hi] with NLL'(lo) < 0 < NLL'(hi) is kept, and a Newton step that leaves it
// (or a zero curvature) is replaced by bisection. It stops when the step is below
// tolerance * a (relative 1e-10 by default, in a and so in T), or NLL'(a) = 0 exactly.
//
// Edge cases. Perfectly separable data (every MET logit above every NOT MET one, with the
// signs right) has NLL decreasing towards T -> 0: the fit returns min_temperature (0.05 by
// default), and `at_bound` says so. Data whose logits have the wrong sign throughout drives
// T -> infinity: the fit returns max_temperature (20). When every logit is 0 the NLL does not
// depend on T (it is ln 2): the fit returns T = 1.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/reward/metrics.hpp"

namespace rlxf::reward {

struct TemperatureOptions {
  double min_temperature = 0.05;  // lower end of the allowed T (separable data ends here)
  double max_temperature = 20.0;  // upper end
  double tolerance = 1e-10;       // relative step in 1/T at which Newton stops
  std::size_t max_iterations = 200;
};

struct TemperatureFit {
  double temperature = 1;      // the fitted T, within [min_temperature, max_temperature]
  double nll = 0;              // mean NLL at `temperature`
  double nll_at_one = 0;       // mean NLL at T = 1 (the uncalibrated classifier)
  std::size_t iterations = 0;  // Newton / bisection steps taken
  bool at_bound = false;       // the minimiser lies at (or beyond) an end of the range
};

namespace detail {
inline void check_logits(const char* func, std::span<const double> logits,
                         std::span<const std::uint8_t> labels) {
  if (logits.size() != labels.size())
    fail(func, ": logits has ", logits.size(), " entries but labels has ", labels.size());
  if (logits.empty()) fail(func, ": no examples");
  for (std::size_t i = 0; i < logits.size(); ++i)
    if (!std::isfinite(logits[i])) fail(func, ": logits[", i, "] = ", logits[i], " is not finite");
  check_labels(func, labels);
}

// NLL'(a) and NLL''(a) at a = 1/T (see the header comment).
struct NllDerivatives {
  double d1 = 0, d2 = 0;
};
inline NllDerivatives nll_derivatives(std::span<const double> z, std::span<const std::uint8_t> y,
                                      double a) {
  double d1 = 0, d2 = 0;
  for (std::size_t i = 0; i < z.size(); ++i) {
    const double s = sigmoid(a * z[i]);
    d1 += (s - (y[i] ? 1.0 : 0.0)) * z[i];
    d2 += s * (1.0 - s) * z[i] * z[i];
  }
  const auto n = static_cast<double>(z.size());
  return {d1 / n, d2 / n};
}

// z_i = logits[i, 1] - logits[i, 0] of an (n, 2) row-major array.
inline std::vector<double> met_logits(std::span<const double> logits2) {
  if (logits2.size() % 2 != 0)
    fail("two-class temperature: logits has ", logits2.size(), " entries, not a multiple of 2 "
         "(expected shape (n, 2), row-major, column 1 = MET)");
  std::vector<double> z(logits2.size() / 2);
  for (std::size_t i = 0; i < z.size(); ++i) z[i] = logits2[2 * i + 1] - logits2[2 * i];
  return z;
}
}  // namespace detail

// Mean NLL of labels (1 = MET) under P(MET) = sigmoid(z / T). logits, labels are (n).
inline double temperature_nll(std::span<const double> logits, std::span<const std::uint8_t> labels,
                              double temperature) {
  detail::check_logits("temperature_nll", logits, labels);
  RLXF_REQUIRE(temperature > 0 && std::isfinite(temperature), "temperature = ", temperature,
               ", expected a finite T > 0");
  double s = 0;
  for (std::size_t i = 0; i < logits.size(); ++i) {
    const double u = logits[i] / temperature;
    s += detail::softplus(u) - (labels[i] ? u : 0.0);
  }
  return s / static_cast<double>(logits.size());
}

// The T in [min_temperature, max_temperature] minimising temperature_nll, with diagnostics.
// logits, labels are (n), n >= 1.
inline TemperatureFit fit_temperature_report(std::span<const double> logits,
                                             std::span<const std::uint8_t> labels,
                                             const TemperatureOptions& opt = {}) {
  detail::check_logits("fit_temperature", logits, labels);
  RLXF_REQUIRE(opt.min_temperature > 0 && opt.min_temperature <= opt.max_temperature &&
                   std::isfinite(opt.max_temperature),
               "temperature range [", opt.min_temperature, ", ", opt.max_temperature,
               "] is not a finite range of positive values");
  RLXF_REQUIRE(opt.tolerance > 0, "tolerance must be positive");
  TemperatureFit fit;
  fit.nll_at_one = temperature_nll(logits, labels, 1.0);
  const bool all_zero = std::all_of(logits.begin(), logits.end(), [](double z) { return z == 0; });
  auto finish = [&](double T, bool at_bound) {
    fit.temperature = T;
    fit.at_bound = at_bound;
    fit.nll = temperature_nll(logits, labels, T);
    return fit;
  };
  if (all_zero) return finish(std::clamp(1.0, opt.min_temperature, opt.max_temperature), false);

  double lo = 1.0 / opt.max_temperature, hi = 1.0 / opt.min_temperature;  // bracket on a = 1/T
  if (detail::nll_derivatives(logits, labels, lo).d1 >= 0) return finish(opt.max_temperature, true);
  if (detail::nll_derivatives(logits, labels, hi).d1 <= 0) return finish(opt.min_temperature, true);
  // Now NLL'(lo) < 0 < NLL'(hi): the root is inside. Start from T = 1 (clamped).
  double a = std::clamp(1.0, lo, hi);
  for (fit.iterations = 1; fit.iterations <= opt.max_iterations; ++fit.iterations) {
    const auto d = detail::nll_derivatives(logits, labels, a);
    if (d.d1 == 0) break;
    (d.d1 < 0 ? lo : hi) = a;
    double next = d.d2 > 0 ? a - d.d1 / d.d2 : lo - 1.0;  // force bisection on zero curvature
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    const double step = std::abs(next - a);
    a = next;
    if (step <= opt.tolerance * a || hi - lo <= opt.tolerance * a) break;
  }
  return finish(1.0 / a, false);
}

// The fitted temperature alone (see fit_temperature_report). logits, labels are (n).
inline double fit_temperature(std::span<const double> logits, std::span<const std::uint8_t> labels,
                              const TemperatureOptions& opt = {}) {
  return fit_temperature_report(logits, labels, opt).temperature;
}

// p_met[i] = sigmoid(logits[i] / T). logits, p_met are (n).
inline void apply_temperature(std::span<const double> logits, double temperature,
                              std::span<double> p_met) {
  RLXF_REQUIRE(temperature > 0 && std::isfinite(temperature), "temperature = ", temperature,
               ", expected a finite T > 0");
  RLXF_REQUIRE(p_met.size() == logits.size(), "p_met has ", p_met.size(), " entries but logits has ",
               logits.size());
  for (std::size_t i = 0; i < logits.size(); ++i) p_met[i] = detail::sigmoid(logits[i] / temperature);
}
inline std::vector<double> apply_temperature(std::span<const double> logits, double temperature) {
  std::vector<double> p(logits.size());
  apply_temperature(logits, temperature, p);
  return p;
}

// Two-logit classifiers: logits is (n, 2) row-major, column 0 NOT MET, column 1 MET. The
// logit of MET is z1 - z0, and softmax(z / T)_1 = sigmoid((z1 - z0) / T).
inline TemperatureFit fit_temperature_two_class_report(std::span<const double> logits,
                                                       std::span<const std::uint8_t> labels,
                                                       const TemperatureOptions& opt = {}) {
  const auto z = detail::met_logits(logits);
  return fit_temperature_report(z, labels, opt);
}
inline double fit_temperature_two_class(std::span<const double> logits,
                                        std::span<const std::uint8_t> labels,
                                        const TemperatureOptions& opt = {}) {
  return fit_temperature_two_class_report(logits, labels, opt).temperature;
}
// p_met[i] = softmax(logits[i] / T)_1 = sigmoid((logits[i,1] - logits[i,0]) / T); logits is
// (n, 2), p_met (n).
inline void apply_temperature_two_class(std::span<const double> logits, double temperature,
                                        std::span<double> p_met) {
  const auto z = detail::met_logits(logits);
  apply_temperature(z, temperature, p_met);
}
inline std::vector<double> apply_temperature_two_class(std::span<const double> logits,
                                                       double temperature) {
  const auto z = detail::met_logits(logits);
  return apply_temperature(z, temperature);
}

}  // namespace rlxf::reward
