#pragma once
// Every public contract of rlxf in one place. Library types static_assert that they model
// their concepts; a user type that does not gets a compile error naming the concept.
// (Policy, RewardModel, Critic, Algorithm, Tokenizer and Backend join as their layers land.)
#include <concepts>
#include <cstddef>
#include <type_traits>

namespace rlxf {

// An optimizer over a ParameterList it was built with. It must guarantee:
// - step() applies one update from the gradients accumulated in the parameters, with the
//   current learning rate, and counts it;
// - zero_grad() sets every gradient it optimizes to zero;
// - lr()/set_lr() read and change the learning rate used by the next step();
// - steps() counts the updates taken, so `opt.set_lr(schedule(opt.steps()))` gives update s
//   (0-based) the schedule's rate at step s.
template <class O>
concept Optimizer = requires(O& opt, const O& const_opt, double lr) {
  opt.step();
  opt.zero_grad();
  opt.set_lr(lr);
  { const_opt.lr() } -> std::convertible_to<double>;
  { const_opt.steps() } -> std::convertible_to<std::size_t>;
};

// A learning-rate schedule: a copyable value invocable with a step (std::size_t, 0-based),
// returning the lr for that step. It must be a pure function of the step, so that a resumed
// run reproduces the same rates.
template <class S>
concept Schedule = std::copy_constructible<S> && std::regular_invocable<const S&, std::size_t> &&
                   std::convertible_to<std::invoke_result_t<const S&, std::size_t>, double>;

}  // namespace rlxf
