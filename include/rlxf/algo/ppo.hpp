#pragma once
// PPO for language models, as the RLHF recipe does it (Ziegler et al. 2019; TRL; OpenRLHF):
// - rollout: sample answers at the training temperature; score them with the reward model
//   (optionally normalised by running mean/std, optionally penalised without EOS);
// - per-token rewards: -beta * KL(policy || reference) on each answer token (k1), plus the
//   score on the last one; beta fixed or adapted towards a target KL (Ziegler's controller);
// - advantages by GAE (gamma 1, lambda 0.95) on the value head that shares the policy's trunk,
//   returns = A + V, advantages whitened over the batch;
// - several epochs of minibatch updates with the clipped surrogate and the clipped value loss
//   (total = L_pg + vf_coef L_V), AdamW with the learning rate annealed linearly to zero over
//   the run, gradient clipping.
// Log-probs for the ratio and the KL come from the same temperature as sampling.
//
//   algo::Ppo ppo(policy, {.steps = 100});                    // the reference is a frozen copy
//   for (...) { auto metrics = ppo.step(policy, reward_model, prompts, rng); }
// algo::BasicPpo<P> runs over any rlxf::Policy P (model::BasicPolicy<B> on any backend);
// algo::Ppo is BasicPpo<model::Policy<float>>.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "rlxf/algo/advantages.hpp"
#include "rlxf/algo/algorithm.hpp"
#include "rlxf/algo/kl.hpp"
#include "rlxf/algo/kl_controller.hpp"
#include "rlxf/algo/ppo_loss.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/clip.hpp"
#include "rlxf/optim/schedule.hpp"
#include "rlxf/reward/mona_reward_model.hpp"

namespace rlxf::algo {

struct PpoConfig {
  std::size_t steps = 100;  // rollout batches in the run: the learning rate reaches 0 at the end
  model::GenerationConfig generation{.max_new_tokens = 32, .temperature = 0.7};  // TRL: T 0.7, no top-k/p
  std::size_t ppo_epochs = 4;        // TRL num_ppo_epochs
  std::size_t minibatch_size = 16;   // rows per update
  double lr = 1e-4;                  // peak; TRL 3e-6 for pre-trained models, small models take more
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;        // OpenRLHF
  double vf_coef = 0.1;              // TRL
  PpoPolicyLossOptions policy_loss{};  // clip 0.2
  ValueLossOptions value_loss{};       // clip 0.2
  GaeOptions gae{};                    // gamma 1, lambda 0.95
  bool adaptive_kl = true;             // Ziegler's controller (older TRL, OpenAI)
  double kl_coef = 0.05;               // fixed beta (TRL) when adaptive_kl is false
  AdaptiveKlOptions adaptive{.init = 0.1, .target = 4.0, .horizon = 10000};
  bool normalize_scores = true;      // running mean/std of the scores (OpenRLHF's normalize_reward)
  double missing_eos_penalty = 0;    // subtracted from the score of an answer without EOS; 0 = off
};

template <rlxf::Policy Pol>
class BasicPpo {
 public:
  using TextPolicy = model::BasicTextPolicy<Pol>;

  BasicPpo(TextPolicy& policy, const PpoConfig& cfg)
      : cfg_(validated(cfg)),
        reference_(policy.policy()),
        params_(policy.policy().parameters(true)),
        optimizer_(params_, {.lr = cfg.lr, .weight_decay = cfg.weight_decay}, optim::decay_except_bias_and_norm),
        kl_(cfg.adaptive_kl ? Controller(AdaptiveKlController(cfg.adaptive)) : Controller(FixedKlController(cfg.kl_coef))),
        policy_(&policy.policy()) {}

  const PpoConfig& config() const { return cfg_; }
  double beta() const { return std::visit([](const auto& c) { return c.value(); }, kl_); }
  std::size_t steps_done() const { return steps_; }
  const Pol& reference() const { return reference_; }

  template <RewardModel R>
  StepMetrics step(TextPolicy& policy, const R& rm, std::span<const std::string> prompts, Rng& rng) {
    RLXF_REQUIRE(&policy.policy() == policy_, "Ppo::step: a different policy than the one Ppo was built with");
    RLXF_REQUIRE(!prompts.empty(), "Ppo::step: no prompts");
    // 1. Rollout and scores.
    const model::Rollout rollout = policy.sample(prompts, cfg_.generation, rng);
    const std::vector<std::string> prompt_copy(prompts.begin(), prompts.end());
    const std::vector<double> raw = rm.score(prompt_copy, rollout.texts);
    RLXF_REQUIRE(raw.size() == prompts.size(), "Ppo::step: the reward model returned ", raw.size(),
                 " scores for ", prompts.size(), " answers");
    return update(rollout, raw, rng);
  }

  // The rest of a step on a given rollout (sampled at the configured temperature from the
  // policy Ppo was built with) and its reward-model scores, one per row: token rewards,
  // advantages, the epochs of minibatch updates, the KL controller.
  StepMetrics update(const model::Rollout& rollout, std::span<const double> raw, Rng& rng) {
    RLXF_REQUIRE(raw.size() == rollout.batch.rows(), "Ppo::update: ", raw.size(), " scores for ",
                 rollout.batch.rows(), " answers");
    std::vector<float> scores(raw.begin(), raw.end());
    std::vector<std::uint8_t> ended(rollout.ended.begin(), rollout.ended.end());
    if (cfg_.missing_eos_penalty > 0)
      apply_missing_eos_penalty<float>(scores, ended, cfg_.missing_eos_penalty);
    if (cfg_.normalize_scores) {
      moments_.update<float>(scores);
      moments_.normalize<float>(scores, scores);
    }

    // 2. Old log-probs and values, reference log-probs, at the sampling temperature.
    const model::SequenceBatch& batch = rollout.batch;
    const std::size_t B = batch.rows(), N = batch.response_width();
    const model::Mask mask = batch.response_mask();
    const std::span<const std::uint8_t> m(mask.data(), mask.size());
    const double T = cfg_.generation.temperature;
    typename Pol::Cache cache;
    const typename Pol::Outputs old = policy_->forward(batch, T, true, cache);
    const Tensor<float, 2> entropies = policy_->entropies(cache);
    const auto [entropy_sum, entropy_count] = masked_sum({entropies.data(), entropies.size()}, m);
    const double entropy = entropy_count ? entropy_sum / static_cast<double>(entropy_count) : 0.0;
    typename Pol::Cache ref_cache;
    const typename Pol::Outputs ref = reference_.forward(batch, T, false, ref_cache);

    // 3. KL-penalised token rewards, GAE, whitened advantages.
    Tensor<float, 2> kl = zeros<float, 2>({B, N}), rewards = zeros<float, 2>({B, N});
    token_kl<float>(span_of(old.logprobs), span_of(ref.logprobs), m, span_of(kl), {});
    const TokenRewardStats reward_stats =
        ppo_token_rewards<float>(span_of(kl), scores, m, beta(), span_of(rewards), B, N);
    Tensor<float, 2> advantages = zeros<float, 2>({B, N}), returns = zeros<float, 2>({B, N});
    gae<float>(span_of(rewards), span_of(old.values), m, span_of(advantages), span_of(returns), B, N, cfg_.gae);
    masked_whiten<float>(span_of(advantages), m, span_of(advantages));

    // 4. Epochs of minibatch updates.
    double pg_sum = 0, vf_sum = 0, clip_sum = 0, vclip_sum = 0, approx_sum = 0, ratio_sum = 0;
    std::size_t updates = 0;
    std::vector<std::size_t> order(B);
    for (std::size_t epoch = 0; epoch < cfg_.ppo_epochs; ++epoch) {
      std::iota(order.begin(), order.end(), std::size_t{0});
      for (std::size_t i = B; i-- > 1;)
        std::swap(order[i], order[rng.next_below(static_cast<std::uint32_t>(i + 1))]);
      for (std::size_t lo = 0; lo < B; lo += cfg_.minibatch_size) {
        const std::span<const std::size_t> rows(order.data() + lo, std::min(B, lo + cfg_.minibatch_size) - lo);
        const std::size_t b = rows.size();
        const auto planned = nn::planned_step(params_, nn::step_key(b, batch.tokens.shape()[1]));
        const model::SequenceBatch mb = batch.select(rows);
        const auto pick = [&](const Tensor<float, 2>& x) {
          Tensor<float, 2> out = zeros<float, 2>({b, N});
          for (std::size_t k = 0; k < b; ++k)
            xt::view(out, k) = xt::view(x, rows[k]);
          return out;
        };
        const model::Mask mb_mask = mb.response_mask();
        const std::span<const std::uint8_t> mm(mb_mask.data(), mb_mask.size());
        const Tensor<float, 2> logp_old = pick(old.logprobs), v_old = pick(old.values),
                               adv = pick(advantages), ret = pick(returns);
        typename Pol::Cache c;
        const typename Pol::Outputs now = policy_->forward(mb, T, true, c);
        Tensor<float, 2> dlogp = zeros<float, 2>({b, N}), dv = zeros<float, 2>({b, N});
        const PolicyLossStats pg = ppo_policy_loss<float>(span_of(now.logprobs), span_of(logp_old), span_of(adv), mm,
                                                          span_of(dlogp), b, N, cfg_.policy_loss);
        const ValueLossStats vf = value_loss<float>(span_of(now.values), span_of(v_old), span_of(ret), mm,
                                                    span_of(dv), b, N, cfg_.value_loss);
        dv *= static_cast<float>(cfg_.vf_coef);
        optimizer_.zero_grad();
        policy_->backward(dlogp, &dv, c);
        const double norm = optim::grad_norm(params_);
        RLXF_REQUIRE(std::isfinite(pg.loss) && std::isfinite(vf.loss) && std::isfinite(norm),
                     "Ppo: non-finite loss or gradient at step ", steps_, " (policy loss ", pg.loss,
                     ", value loss ", vf.loss, ", gradient norm ", norm, ")");
        if (cfg_.max_grad_norm > 0)
          optim::clip_grad_norm(params_, cfg_.max_grad_norm);
        optimizer_.set_lr(learning_rate());
        optimizer_.step();
        pg_sum += pg.loss, vf_sum += vf.loss, clip_sum += pg.clipfrac, vclip_sum += vf.clipfrac;
        approx_sum += pg.approxkl, ratio_sum += pg.ratio_mean;
        ++updates;
      }
    }

    // 5. The KL controller sees the batch's mean summed KL.
    const double lr_used = learning_rate();
    std::visit([&](auto& c) { c.update(reward_stats.kl, B); }, kl_);
    ++steps_;
    double raw_mean = 0, eos = 0, length = 0;
    for (std::size_t b = 0; b < B; ++b) {
      raw_mean += raw[b] / static_cast<double>(B);
      eos += ended[b];  // a count: summing 1/B terms would give e.g. 5.999999999999999 for 6 of 6
    }
    for (std::uint8_t v : mask)
      length += v / static_cast<double>(B);
    const auto n = static_cast<double>(updates);
    return {{"objective/kl", reward_stats.kl},
            {"objective/entropy", entropy},
            {"objective/non_score_reward", reward_stats.non_score_reward},
            {"objective/rlhf_reward", reward_stats.rlhf_reward},
            {"objective/scores", raw_mean},
            {"policy/approxkl_avg", approx_sum / n},
            {"policy/clipfrac_avg", clip_sum / n},
            {"loss/policy_avg", pg_sum / n},
            {"loss/value_avg", vf_sum / n},
            {"val/clipfrac_avg", vclip_sum / n},
            {"val/ratio", ratio_sum / n},
            {"val/num_eos_tokens", eos},
            {"completions/mean_length", length},
            {"beta", beta()},
            {"lr", lr_used}};
  }

  // The optimizer's moments, the KL controller, the score statistics and the step count.
  AlgorithmState state() const {
    AlgorithmState s;
    s.optimizer = optimizer_.state();
    s.kl = std::visit([](const auto& c) { return c.state(); }, kl_);
    s.moments = moments_.state();
    s.steps = steps_;
    return s;
  }
  void restore(const AlgorithmState& s) {
    optimizer_.restore(s.optimizer);
    kl_ = s.kl.adaptive ? Controller(AdaptiveKlController::from_state(s.kl))
                        : Controller(FixedKlController::from_state(s.kl));
    moments_ = RunningMoments::from_state(s.moments);
    steps_ = s.steps;
  }

 private:
  using Controller = std::variant<FixedKlController, AdaptiveKlController>;

  static const PpoConfig& validated(const PpoConfig& c) {
    with_context("PpoConfig.generation", [&] { model::validate(c.generation); });
    internal::require_optimizer_options("PpoConfig", c.lr, c.weight_decay, c.max_grad_norm);
    RLXF_REQUIRE(c.steps > 0, "PpoConfig.steps must be > 0");
    RLXF_REQUIRE(c.ppo_epochs > 0, "PpoConfig.ppo_epochs must be > 0");
    RLXF_REQUIRE(c.minibatch_size > 0, "PpoConfig.minibatch_size must be > 0");
    RLXF_REQUIRE(c.vf_coef >= 0, "PpoConfig.vf_coef must be >= 0, got ", c.vf_coef);
    require_in("PpoConfig.vf_coef", c.vf_coef, Range::closed(0, 1e6));
    require_in("PpoConfig.kl_coef", c.kl_coef, Range::closed(0, 1e6));
    require_in("PpoConfig.adaptive.init", c.adaptive.init, Range::closed(0, 1e6));
    require_in("PpoConfig.adaptive.target", c.adaptive.target, Range::above(0, 1e12));
    require_in("PpoConfig.adaptive.horizon", c.adaptive.horizon, Range::above(0, 1e15));
    require_in("PpoConfig.missing_eos_penalty", c.missing_eos_penalty, Range::closed(0, 1e6));
    RLXF_REQUIRE(c.generation.top_k == 0 && c.generation.top_p == 1.0,
                 "PpoConfig.generation: top_k/top_p must be off during PPO rollouts (the ratio and KL "
                 "assume the full softmax(z / T))");
    RLXF_REQUIRE(!c.generation.greedy, "PpoConfig.generation: rollouts must sample, not decode greedily");
    return c;
  }

  // Linear decay to zero over the run, by rollout step (every update of a step uses its rate).
  double learning_rate() const {
    return cfg_.lr * std::max(0.0, 1.0 - static_cast<double>(steps_) / static_cast<double>(cfg_.steps));
  }

  static std::span<float> span_of(Tensor<float, 2>& t) { return {t.data(), t.size()}; }
  static std::span<const float> span_of(const Tensor<float, 2>& t) { return {t.data(), t.size()}; }

  using Params = decltype(std::declval<Pol&>().parameters(true));

  PpoConfig cfg_;
  Pol reference_;
  Params params_;
  optim::AdamWFor<Params> optimizer_;
  Controller kl_;
  RunningMoments moments_;
  std::size_t steps_ = 0;
  Pol* policy_;
};

using Ppo = BasicPpo<model::Policy<float>>;

static_assert(Algorithm<Ppo, model::TextPolicy, reward::MonaRewardModel>);

}  // namespace rlxf::algo
