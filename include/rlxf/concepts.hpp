#pragma once
// Every public contract of rlxf in one place. Library types static_assert that they model
// their concepts; a user type that does not gets a compile error naming the concept.
// (Policy, Critic and Backend join as their layers land.)
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace rlxf {

class Rng;

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

// A tokenizer: text (any bytes) to token ids and back. It must guarantee:
// - encode(text) returns ids in [0, vocab_size()), deterministically;
// - decode(encode(text)) == text for every byte string (lossless, invalid UTF-8 and NULs
//   included), and decode of an id outside [0, vocab_size()) throws rlxf::Error;
// - encode, decode and vocab_size are const and safe to call from several threads at once.
template <class T>
concept Tokenizer = requires(const T& tok, std::string_view text, std::span<const std::int32_t> ids) {
  { tok.encode(text) } -> std::same_as<std::vector<std::int32_t>>;
  { tok.decode(ids) } -> std::convertible_to<std::string>;
  { tok.vocab_size() } -> std::convertible_to<std::size_t>;
};

// A reward model: scores (prompt, response) text pairs. It must guarantee:
// - score(prompts, responses) returns one finite number per pair, in order, higher = better;
// - it throws rlxf::Error when the two spans differ in size or a prompt is not one it can read;
// - score is const and deterministic (the same pairs give the same numbers).
template <class R>
concept RewardModel = requires(const R& rm, std::span<const std::string> prompts,
                               std::span<const std::string> responses) {
  { rm.score(prompts, responses) } -> std::same_as<std::vector<double>>;
};

// An RL fine-tuning algorithm over a policy P and a reward model R. It must guarantee:
// - step(policy, reward_model, prompts, rng) does one round of the algorithm on these prompts
//   (sampling with rng, scoring with the reward model, updating the policy) and returns named
//   metrics as (name, value) pairs, TRL's names where they exist;
// - state() captures everything beyond the policy's weights that a resumed run needs, and
//   restore(state()) on an algorithm built the same way continues the run exactly.
template <class A, class P, class R>
concept Algorithm = RewardModel<R> &&
    requires(A& algo, const A& const_algo, P& policy, const R& rm, std::span<const std::string> prompts, Rng& rng) {
      { algo.step(policy, rm, prompts, rng) } -> std::same_as<std::vector<std::pair<std::string, double>>>;
      algo.restore(const_algo.state());
    };

}  // namespace rlxf
