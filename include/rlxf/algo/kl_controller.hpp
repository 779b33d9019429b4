#pragma once
// KL coefficient controllers (the beta of r_t = -beta kl_t).
//   FixedKlController:    beta stays constant (TRL PPO, OpenRLHF without a target).
//   AdaptiveKlController: Ziegler et al. 2019, as in OpenAI's lm-human-preferences and
//                         OpenRLHF's AdaptiveKLController:
//                           e    = clip(KL / target - 1, -0.2, 0.2)
//                           beta <- beta (1 + e n / horizon)
//                         with KL the observed mean over sequences of the SUMMED per-token KL
//                         (mean_sequence_kl in kl.hpp) and n the number of episodes
//                         (sequences) in the batch.
// Both have value(), update(observed_kl, n_episodes) and a plain, copyable state for
// checkpoints (state() / from_state()).
#include <algorithm>
#include <cmath>
#include <cstddef>

#include "rlxf/core/error.hpp"

namespace rlxf::algo {

// Everything a controller needs to resume. For a fixed controller target and horizon are 0.
struct KlControllerState {
  double value = 0;    // the current beta
  double target = 0;   // target KL (adaptive only)
  double horizon = 0;  // horizon in episodes (adaptive only)
  bool adaptive = false;
};

class FixedKlController {
 public:
  // 0.05 is TRL PPOConfig.kl_coef; OpenRLHF's init_kl_coef is 0.01.
  explicit FixedKlController(double beta = 0.05) : value_(beta) {
    RLXF_REQUIRE(std::isfinite(beta) && beta >= 0, "beta = ", beta, ", expected finite and >= 0");
  }
  double value() const noexcept { return value_; }
  // Validates its arguments like the adaptive controller, then does nothing.
  void update(double observed_kl, std::size_t n_episodes) const {
    RLXF_REQUIRE(std::isfinite(observed_kl), "observed_kl = ", observed_kl, " is not finite");
    (void)n_episodes;
  }
  KlControllerState state() const noexcept { return {value_, 0, 0, false}; }
  static FixedKlController from_state(const KlControllerState& s) {
    RLXF_REQUIRE(!s.adaptive, "the state is an adaptive controller's");
    return FixedKlController(s.value);
  }

 private:
  double value_;
};

struct AdaptiveKlOptions {
  double init = 0.2;        // initial beta: older TRL 0.2 (OpenAI 0.15)
  double target = 6.0;      // target KL in nats per sequence (older TRL / OpenAI)
  double horizon = 10000;   // episodes (TRL, OpenAI, OpenRLHF)
};

class AdaptiveKlController {
 public:
  explicit AdaptiveKlController(const AdaptiveKlOptions& opt = {})
      : value_(opt.init), target_(opt.target), horizon_(opt.horizon) {
    RLXF_REQUIRE(std::isfinite(opt.init) && opt.init >= 0, "init = ", opt.init, ", expected finite and >= 0");
    RLXF_REQUIRE(std::isfinite(opt.target) && opt.target > 0, "target = ", opt.target,
                 ", expected finite and > 0");
    RLXF_REQUIRE(std::isfinite(opt.horizon) && opt.horizon > 0, "horizon = ", opt.horizon,
                 ", expected finite and > 0");
  }
  double value() const noexcept { return value_; }
  double target() const noexcept { return target_; }
  double horizon() const noexcept { return horizon_; }

  // One Ziegler step; returns the new beta.
  double update(double observed_kl, std::size_t n_episodes) {
    RLXF_REQUIRE(std::isfinite(observed_kl), "observed_kl = ", observed_kl, " is not finite");
    // beta is multiplied by 1 + e n / horizon with |e| <= 0.2: a horizon of 0.2 n or less
    // could make it zero or negative (the KL penalty a bonus).
    if (!(0.2 * static_cast<double>(n_episodes) < horizon_))
      fail("AdaptiveKlController: horizon = ", horizon_, " is too short for ", n_episodes,
           " episodes per update: expected > 0.2 x episodes = ", 0.2 * static_cast<double>(n_episodes),
           " (beta would be multiplied by up to 1 - 0.2 x ", n_episodes, " / ", horizon_, " <= 0)");
    const double e = std::clamp(observed_kl / target_ - 1.0, -0.2, 0.2);
    value_ *= 1.0 + e * static_cast<double>(n_episodes) / horizon_;
    return value_;
  }

  KlControllerState state() const noexcept { return {value_, target_, horizon_, true}; }
  static AdaptiveKlController from_state(const KlControllerState& s) {
    RLXF_REQUIRE(s.adaptive, "the state is a fixed controller's");
    return AdaptiveKlController(AdaptiveKlOptions{s.value, s.target, s.horizon});
  }

 private:
  double value_, target_, horizon_;
};

}  // namespace rlxf::algo
