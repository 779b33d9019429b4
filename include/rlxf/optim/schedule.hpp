#pragma once
// Learning-rate schedules: value types mapping a 0-based step s to a learning rate.
//
// Convention (that of Hugging Face transformers with torch's LambdaLR): s is the index of the
// optimizer update, counted from 0, and schedule(s) is the lr that update uses; in HF's loop
// (optimizer.step(); scheduler.step()) update s runs with lr * lr_lambda(s). With an rlxf
// optimizer: `opt.step(schedule(opt.steps()))`, since steps() counts the updates already taken.
// During warm-up (s < warmup_steps) every schedule ramps linearly from 0:
//   lr(s) = lr * s / warmup_steps
// so update 0 has lr 0, as in HF: it only accumulates the AdamW moments.
// Arguments are checked at construction; a bad one throws rlxf::Error naming it.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numbers>

#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"

namespace rlxf::optim {

namespace detail {
inline void check_lr(const char* field, double lr) {
  if (!(std::isfinite(lr) && lr >= 0)) fail(field, " must be finite and >= 0, got ", lr);
}
inline void check_total(const char* schedule, std::size_t warmup_steps, std::size_t total_steps) {
  if (total_steps <= warmup_steps)
    fail(schedule, ".total_steps (", total_steps, ") must be > warmup_steps (", warmup_steps, ")");
}
// lr * s / warmup_steps, the warm-up ramp (call only for s < warmup_steps).
inline double warmup_ramp(double lr, std::size_t s, std::size_t warmup_steps) {
  return lr * static_cast<double>(s) / static_cast<double>(warmup_steps);
}
}  // namespace detail

// lr(s) = lr for every s (HF get_constant_schedule).
class Constant {
 public:
  explicit Constant(double lr) : lr_(lr) { detail::check_lr("Constant.lr", lr); }
  double operator()(std::size_t /*s*/) const { return lr_; }
  double lr() const { return lr_; }

 private:
  double lr_;
};

// Linear warm-up, then constant (HF get_constant_schedule_with_warmup):
//   lr(s) = lr * s / warmup_steps   for s < warmup_steps
//         = lr                      afterwards
// warmup_steps = 0 is a constant schedule.
class LinearWarmup {
 public:
  LinearWarmup(double lr, std::size_t warmup_steps) : lr_(lr), warmup_steps_(warmup_steps) {
    detail::check_lr("LinearWarmup.lr", lr);
  }
  double operator()(std::size_t s) const {
    return s < warmup_steps_ ? detail::warmup_ramp(lr_, s, warmup_steps_) : lr_;
  }
  double lr() const { return lr_; }
  std::size_t warmup_steps() const { return warmup_steps_; }

 private:
  double lr_;
  std::size_t warmup_steps_;
};

// Linear warm-up, then half a cosine from lr down to min_lr at total_steps (HF
// get_cosine_with_min_lr_schedule_with_warmup; with min_lr = 0, get_cosine_schedule_with_warmup):
//   lr(s) = lr * s / warmup_steps                                   for s < warmup_steps
//         = min_lr + (lr - min_lr) * (1 + cos(pi * progress)) / 2   afterwards, where
//   progress = min(1, (s - warmup_steps) / (total_steps - warmup_steps))
// Past total_steps the rate stays at min_lr (HF's curve turns back up there: it does not clamp
// the progress; the two agree for every s <= total_steps). Requires total_steps > warmup_steps
// and 0 <= min_lr <= lr.
class Cosine {
 public:
  Cosine(double lr, std::size_t warmup_steps, std::size_t total_steps, double min_lr = 0)
      : lr_(lr), min_lr_(min_lr), warmup_steps_(warmup_steps), total_steps_(total_steps) {
    detail::check_lr("Cosine.lr", lr);
    detail::check_lr("Cosine.min_lr", min_lr);
    if (min_lr > lr) fail("Cosine.min_lr (", min_lr, ") must be <= lr (", lr, ")");
    detail::check_total("Cosine", warmup_steps, total_steps);
  }
  double operator()(std::size_t s) const {
    if (s < warmup_steps_) return detail::warmup_ramp(lr_, s, warmup_steps_);
    const double progress = std::min(1.0, static_cast<double>(s - warmup_steps_) /
                                              static_cast<double>(total_steps_ - warmup_steps_));
    return min_lr_ + (lr_ - min_lr_) * (1 + std::cos(std::numbers::pi * progress)) / 2;
  }
  double lr() const { return lr_; }
  double min_lr() const { return min_lr_; }
  std::size_t warmup_steps() const { return warmup_steps_; }
  std::size_t total_steps() const { return total_steps_; }

 private:
  double lr_, min_lr_;
  std::size_t warmup_steps_, total_steps_;
};

// Linear warm-up, then linear decay to 0 at total_steps (HF get_linear_schedule_with_warmup;
// PPO's "anneal the lr to zero"):
//   lr(s) = lr * s / warmup_steps                                           for s < warmup_steps
//         = lr * max(0, (total_steps - s) / (total_steps - warmup_steps))   afterwards
// so lr(warmup_steps) = lr, lr(total_steps) = 0, and 0 past it. Requires
// total_steps > warmup_steps.
class LinearDecay {
 public:
  LinearDecay(double lr, std::size_t warmup_steps, std::size_t total_steps)
      : lr_(lr), warmup_steps_(warmup_steps), total_steps_(total_steps) {
    detail::check_lr("LinearDecay.lr", lr);
    detail::check_total("LinearDecay", warmup_steps, total_steps);
  }
  double operator()(std::size_t s) const {
    if (s < warmup_steps_) return detail::warmup_ramp(lr_, s, warmup_steps_);
    if (s >= total_steps_) return 0.0;
    return lr_ * static_cast<double>(total_steps_ - s) /
           static_cast<double>(total_steps_ - warmup_steps_);
  }
  double lr() const { return lr_; }
  std::size_t warmup_steps() const { return warmup_steps_; }
  std::size_t total_steps() const { return total_steps_; }

 private:
  double lr_;
  std::size_t warmup_steps_, total_steps_;
};

static_assert(rlxf::Schedule<Constant> && rlxf::Schedule<LinearWarmup> &&
              rlxf::Schedule<Cosine> && rlxf::Schedule<LinearDecay>);

}  // namespace rlxf::optim
