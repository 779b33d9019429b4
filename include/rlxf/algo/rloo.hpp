#pragma once
// RLOO, REINFORCE Leave-One-Out (Kool et al. 2019; Ahmadian et al. 2024; TRL RLOOTrainer, the
// PPO-style one):
// - rollout: each prompt is sampled k times (TRL rloo_k) at the training temperature; the
//   reward model scores every answer;
// - old log-probs (the sampling policy) and reference log-probs at the sampling temperature,
//   once per step; the sequence reward has the KL in it (no gradient):
//   r_i = R_i - beta sum_t (log pi_old - log ref)   (k1, kl_penalised_sequence_rewards);
// - leave-one-out baseline: A_i = r_i - (sum_{j in group} r_j - r_i) / (k - 1) (rloo_advantages);
// - epochs (TRL num_ppo_epochs) over the batch in minibatches of the sequence-level clipped
//   ratio loss (rloo_loss), AdamW with the learning rate annealed linearly to zero over the
//   run, gradient clipping. A minibatch is one optimizer update, processed in microbatches
//   whose gradients are accumulated (memory only).
// No critic: the value head is neither used nor trained.
//
//   algo::Rloo rloo(policy, {.steps = 100});           // the reference is a frozen copy
//   for (...) { auto metrics = rloo.step(policy, reward_model, prompts, rng); }
//
// A step on P prompts works on B = P * k answers; last_step() exposes the scores, KL sums,
// rewards and advantages it used (for tests and diagnostics).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlxf/algo/advantages.hpp"
#include "rlxf/algo/algorithm.hpp"
#include "rlxf/algo/kl.hpp"
#include "rlxf/algo/rloo_loss.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/clip.hpp"
#include "rlxf/reward/mona_reward_model.hpp"

namespace rlxf::algo {

struct RlooConfig {
  std::size_t steps = 100;   // rollout batches in the run: the learning rate reaches 0 at the end
  std::size_t k = 2;         // TRL rloo_k: samples per prompt; >= 2
  double beta = 0.05;        // TRL kl_coef: r_i = R_i - beta sum_t k1_t
  double eps = 0.2;          // TRL cliprange (sequence-level ratio)
  model::GenerationConfig generation{.max_new_tokens = 32, .temperature = 0.7};  // TRL: T 0.7, no top-k/p
  std::size_t epochs = 4;    // TRL num_ppo_epochs
  std::size_t minibatch_size = 0;    // rows per optimizer update; 0 = the whole batch (TRL num_mini_batches 1)
  std::size_t microbatch_size = 16;  // rows per forward/backward (gradients accumulated); memory only
  double lr = 1e-4;                  // peak; TRL 3e-6 for pre-trained models, small models take more
  double weight_decay = 0.0;         // TRL (transformers) default
  double max_grad_norm = 1.0;        // TRL (transformers) default; 0 = no clipping
};

// What the last step saw, in batch order (group g = rows g * k .. g * k + k - 1).
struct RlooStepRecord {
  std::vector<std::string> prompts;  // each prompt repeated k times
  std::vector<std::string> texts;    // the sampled answers
  std::vector<double> scores;        // R_i, the reward model's scores
  std::vector<double> kl;            // sum_t (log pi_old - log ref) over answer i's tokens
  std::vector<double> rewards;       // r_i = R_i - beta kl_i
  std::vector<double> advantages;    // the advantages the loss used (float values, widened)
};

template <rlxf::Policy Pol>
class BasicRloo {
 public:
  using TextPolicy = model::BasicTextPolicy<Pol>;

  BasicRloo(TextPolicy& policy, const RlooConfig& cfg)
      : cfg_(validated(cfg)),
        reference_(policy.policy()),
        params_(policy.policy().parameters(false)),
        optimizer_(params_, {.lr = cfg.lr, .weight_decay = cfg.weight_decay}, optim::decay_except_bias_and_norm),
        policy_(&policy.policy()) {}

  const RlooConfig& config() const { return cfg_; }
  std::size_t steps_done() const { return steps_; }
  const Pol& reference() const { return reference_; }
  const RlooStepRecord& last_step() const { return last_; }

  // Metrics (TRL names): objective/scores (mean R), objective/kl (mean summed k1 KL of the
  // sampling policy to the reference), objective/non_score_reward (-beta objective/kl),
  // objective/rlhf_reward (mean r), objective/entropy, policy/clipfrac_avg,
  // policy/approxkl_avg, loss/policy_avg, val/ratio (means over the updates of the step),
  // val/num_eos_tokens, completions/mean_length (answer tokens, EOS included), lr.
  template <RewardModel R>
  StepMetrics step(TextPolicy& policy, const R& rm, std::span<const std::string> prompts, Rng& rng) {
    RLXF_REQUIRE(&policy.policy() == policy_, "Rloo::step: a different policy than the one Rloo was built with");
    RLXF_REQUIRE(!prompts.empty(), "Rloo::step: no prompts");
    const std::size_t K = cfg_.k;
    // 1. Rollout: every prompt k times, consecutively; scores.
    RlooStepRecord rec;
    rec.prompts.reserve(prompts.size() * K);
    for (const std::string& p : prompts)
      for (std::size_t g = 0; g < K; ++g) rec.prompts.push_back(p);
    model::Rollout rollout = policy.sample(rec.prompts, cfg_.generation, rng);
    rec.scores = rm.score(std::span<const std::string>(rec.prompts), std::span<const std::string>(rollout.texts));
    const model::SequenceBatch& batch = rollout.batch;
    const std::size_t B = batch.rows(), N = batch.response_width();
    RLXF_REQUIRE(rec.scores.size() == B, "Rloo::step: the reward model returned ", rec.scores.size(),
                 " scores for ", B, " answers");
    for (std::size_t i = 0; i < B; ++i)
      RLXF_REQUIRE(std::isfinite(rec.scores[i]), "Rloo::step: the reward model returned ", rec.scores[i],
                   " for answer ", i);

    // 2. Old and reference log-probs at the sampling temperature, microbatch by microbatch.
    const model::Mask mask = batch.response_mask();
    const std::span<const std::uint8_t> m(mask.data(), mask.size());
    const double T = cfg_.generation.temperature;
    Tensor<float, 2> old = zeros<float, 2>({B, N}), ref = zeros<float, 2>({B, N});
    double entropy_sum = 0;
    std::vector<std::size_t> all(B);
    std::iota(all.begin(), all.end(), std::size_t{0});
    for (std::size_t lo = 0; lo < B; lo += cfg_.microbatch_size) {
      const std::span<const std::size_t> rows(all.data() + lo, std::min(B, lo + cfg_.microbatch_size) - lo);
      const model::SequenceBatch mb = batch.select(rows);
      typename Pol::Cache c, rc;
      scatter(policy_->forward(mb, T, false, c).logprobs, rows, old);
      const Tensor<float, 2> h = policy_->entropies(c);
      const model::Mask mb_mask = mb.response_mask();
      entropy_sum += masked_sum({h.data(), h.size()}, {mb_mask.data(), mb_mask.size()}).first;
      scatter(reference_.forward(mb, T, false, rc).logprobs, rows, ref);
    }

    // 3. KL-penalised sequence rewards (k1), leave-one-out advantages.
    std::vector<double> old_d(old.begin(), old.end()), ref_d(ref.begin(), ref.end()), kl(B * N);
    token_kl<double>(old_d, ref_d, m, kl, {}, {.estimator = KlEstimator::k1});
    rec.kl.assign(B, 0.0);
    for (std::size_t b = 0; b < B; ++b)
      for (std::size_t t = 0; t < N; ++t) rec.kl[b] += kl[b * N + t];  // 0 under the mask
    rec.rewards.resize(B);
    kl_penalised_sequence_rewards<double>(rec.scores, kl, m, cfg_.beta, rec.rewards, B, N);
    std::vector<double> adv(B);
    rloo_advantages<double>(rec.rewards, adv, K);
    std::vector<float> advantages(B);
    rec.advantages.resize(B);
    for (std::size_t i = 0; i < B; ++i) {
      advantages[i] = static_cast<float>(adv[i]);
      rec.advantages[i] = static_cast<double>(advantages[i]);
    }

    // 4. Epochs of minibatch updates.
    const std::size_t mini = cfg_.minibatch_size == 0 ? B : std::min(cfg_.minibatch_size, B);
    const RlooLossOptions loss_opt{.eps = cfg_.eps};
    double loss_sum = 0, clip_sum = 0, approx_sum = 0, ratio_sum = 0;
    std::size_t updates = 0;
    std::vector<std::size_t> order = all;
    const double lr_used = learning_rate();
    for (std::size_t epoch = 0; epoch < cfg_.epochs; ++epoch) {
      if (mini < B)  // one minibatch: its order does not matter
        for (std::size_t i = B; i-- > 1;)
          std::swap(order[i], order[rng.next_below(static_cast<std::uint32_t>(i + 1))]);
      for (std::size_t lo = 0; lo < B; lo += mini) {
        const std::span<const std::size_t> minibatch(order.data() + lo, std::min(B, lo + mini) - lo);
        const std::size_t b_mini = minibatch.size();
        const auto planned = nn::planned_step(params_, nn::step_key(b_mini, batch.tokens.shape()[1]));
        optimizer_.zero_grad();
        double loss = 0, clip = 0, approx = 0, ratio = 0;
        for (std::size_t mlo = 0; mlo < b_mini; mlo += cfg_.microbatch_size) {
          const std::span<const std::size_t> rows = minibatch.subspan(mlo, std::min(b_mini - mlo, cfg_.microbatch_size));
          const std::size_t b = rows.size();
          const model::SequenceBatch mb = batch.select(rows);
          const model::Mask mb_mask = mb.response_mask();
          const std::span<const std::uint8_t> mm(mb_mask.data(), mb_mask.size());
          const Tensor<float, 2> logp_old = gather(old, rows);
          std::vector<float> a(b);
          for (std::size_t j = 0; j < b; ++j) a[j] = advantages[rows[j]];
          typename Pol::Cache c;
          const typename Pol::Outputs now = policy_->forward(mb, T, false, c);
          Tensor<float, 2> dlogp = zeros<float, 2>({b, N});
          const RlooLossStats st = rloo_loss<float>(span_of(now.logprobs), span_of(logp_old), a, mm,
                                                    span_of(dlogp), b, N, loss_opt);
          // The microbatch's share of the minibatch loss (rloo_loss is a mean over its rows).
          const double share = static_cast<double>(b) / static_cast<double>(b_mini);
          dlogp *= static_cast<float>(share);
          policy_->backward(dlogp, nullptr, c);
          loss += share * st.loss, clip += share * st.clipfrac, approx += share * st.approxkl;
          ratio += share * st.ratio_mean;
        }
        const double norm = optim::grad_norm(params_);
        RLXF_REQUIRE(std::isfinite(loss) && std::isfinite(norm), "Rloo: non-finite loss or gradient at step ",
                     steps_, " (loss ", loss, ", gradient norm ", norm, ")");
        if (cfg_.max_grad_norm > 0)
          optim::clip_grad_norm(params_, cfg_.max_grad_norm);
        optimizer_.set_lr(lr_used);
        optimizer_.step();
        loss_sum += loss, clip_sum += clip, approx_sum += approx, ratio_sum += ratio;
        ++updates;
      }
    }
    ++steps_;

    // 5. Metrics.
    double score = 0, kl_mean = 0, rlhf = 0, eos = 0;
    std::size_t tokens = 0;
    for (std::size_t b = 0; b < B; ++b) {
      score += rec.scores[b] / static_cast<double>(B);
      kl_mean += rec.kl[b] / static_cast<double>(B);
      rlhf += rec.rewards[b] / static_cast<double>(B);
      eos += rollout.ended[b] ? 1.0 : 0.0;
    }
    for (std::uint8_t v : mask) tokens += v;
    rec.texts = std::move(rollout.texts);
    last_ = std::move(rec);
    const auto n = static_cast<double>(updates);
    return {{"objective/scores", score},
            {"objective/kl", kl_mean},
            {"objective/non_score_reward", -cfg_.beta * kl_mean},
            {"objective/rlhf_reward", rlhf},
            {"objective/entropy", entropy_sum / static_cast<double>(std::max<std::size_t>(tokens, 1))},
            {"policy/clipfrac_avg", clip_sum / n},
            {"policy/approxkl_avg", approx_sum / n},
            {"loss/policy_avg", loss_sum / n},
            {"val/ratio", ratio_sum / n},
            {"val/num_eos_tokens", eos},
            {"completions/mean_length", static_cast<double>(tokens) / static_cast<double>(B)},
            {"lr", lr_used}};
  }

  // The optimizer's moments and the step count (the KL and score fields stay default: beta is
  // fixed and scores are not normalised).
  AlgorithmState state() const {
    AlgorithmState s;
    s.optimizer = optimizer_.state();
    s.steps = steps_;
    return s;
  }
  void restore(const AlgorithmState& s) {
    optimizer_.restore(s.optimizer);
    steps_ = s.steps;
  }

 private:
  static const RlooConfig& validated(const RlooConfig& c) {
    with_context("RlooConfig.generation", [&] { model::validate(c.generation); });
    internal::require_optimizer_options("RlooConfig", c.lr, c.weight_decay, c.max_grad_norm);
    RLXF_REQUIRE(c.steps > 0, "RlooConfig.steps must be > 0");
    RLXF_REQUIRE(c.k >= 2, "RlooConfig.k must be >= 2 (the leave-one-out baseline needs two samples), got ", c.k);
    RLXF_REQUIRE(std::isfinite(c.beta) && c.beta >= 0, "RlooConfig.beta must be >= 0, got ", c.beta);
    RLXF_REQUIRE(std::isfinite(c.eps) && c.eps >= 0 && c.eps < 1, "RlooConfig.eps must be in [0, 1), got ", c.eps);
    RLXF_REQUIRE(c.epochs > 0, "RlooConfig.epochs must be > 0");
    RLXF_REQUIRE(c.microbatch_size > 0, "RlooConfig.microbatch_size must be > 0");
    RLXF_REQUIRE(std::isfinite(c.generation.temperature) && c.generation.temperature > 0,
                 "RlooConfig.generation.temperature must be > 0, got ", c.generation.temperature);
    RLXF_REQUIRE(c.generation.top_k == 0 && c.generation.top_p == 1.0,
                 "RlooConfig.generation: top_k/top_p must be off during RLOO rollouts (the ratio and KL "
                 "assume the full softmax(z / T))");
    RLXF_REQUIRE(!c.generation.greedy, "RlooConfig.generation: rollouts must sample, not decode greedily");
    return c;
  }

  // Linear decay to zero over the run, by rollout step (every update of a step uses its rate).
  double learning_rate() const {
    return cfg_.lr * std::max(0.0, 1.0 - static_cast<double>(steps_) / static_cast<double>(cfg_.steps));
  }

  static std::span<float> span_of(Tensor<float, 2>& t) { return {t.data(), t.size()}; }
  static std::span<const float> span_of(const Tensor<float, 2>& t) { return {t.data(), t.size()}; }

  static void scatter(const Tensor<float, 2>& src, std::span<const std::size_t> rows, Tensor<float, 2>& dst) {
    for (std::size_t j = 0; j < rows.size(); ++j) xt::view(dst, rows[j]) = xt::view(src, j);
  }
  static Tensor<float, 2> gather(const Tensor<float, 2>& src, std::span<const std::size_t> rows) {
    Tensor<float, 2> out = zeros<float, 2>({rows.size(), src.shape()[1]});
    for (std::size_t j = 0; j < rows.size(); ++j) xt::view(out, j) = xt::view(src, rows[j]);
    return out;
  }

  RlooConfig cfg_;
  Pol reference_;
  using Params = decltype(std::declval<Pol&>().parameters(false));

  Params params_;
  optim::AdamWFor<Params> optimizer_;
  std::size_t steps_ = 0;
  Pol* policy_;
  RlooStepRecord last_;
};

using Rloo = BasicRloo<model::Policy<float>>;

static_assert(Algorithm<Rloo, model::TextPolicy, reward::MonaRewardModel>);

}  // namespace rlxf::algo
