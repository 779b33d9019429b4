#pragma once
// GRPO, Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath; TRL GRPOTrainer):
// - rollout: each prompt is sampled group_size times (TRL num_generations) at the training
//   temperature; the reward model scores every answer;
// - advantages: per group, A_i = (r_i - mean_g) / (std_g + 1e-4) (Bessel std; TRL's default
//   scale_rewards = "group"), the same A for every token of answer i (grpo_advantages);
// - old log-probs (the sampling policy, at the sampling temperature) and reference log-probs
//   are computed once per step;
// - iterations_per_step passes (TRL num_iterations, mu) over the batch in minibatches: the
//   clipped token-level surrogate plus beta times the k3 KL to the frozen reference
//   (grpo_loss), AdamW with the learning rate annealed linearly to zero over the run,
//   gradient clipping. A minibatch is one optimizer update; it is processed in microbatches
//   whose gradients are accumulated (memory only: the loss is that of the whole minibatch).
// No critic: the value head is neither used nor trained.
//
//   algo::Grpo grpo(policy, {.steps = 100});           // the reference is a frozen copy
//   for (...) { auto metrics = grpo.step(policy, reward_model, prompts, rng); }
//
// A step on P prompts works on B = P * group_size answers; last_step() exposes the scores and
// advantages it used (for tests and diagnostics).
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
#include "rlxf/algo/grpo_loss.hpp"
#include "rlxf/algo/kl.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/clip.hpp"
#include "rlxf/reward/mona_reward_model.hpp"

namespace rlxf::algo {

struct GrpoConfig {
  std::size_t steps = 100;       // rollout batches in the run: the learning rate reaches 0 at the end
  std::size_t group_size = 8;    // TRL num_generations (G); >= 2 (the group std needs two samples)
  model::GenerationConfig generation{.max_new_tokens = 32, .temperature = 1.0};  // TRL: T 1.0, no top-k/p
  // beta 0.04 (DeepSeekMath, older TRL) rather than TRL's current 0.0: we want the KL to
  // the SFT reference in the loss, so that the policy stays close to the model it started from.
  GrpoLossOptions loss{.beta = 0.04};  // eps 0.2, token_mean aggregation (TRL loss_type "dapo")
  GroupScale scale_rewards = GroupScale::group;  // TRL scale_rewards default ("group")
  std::size_t iterations_per_step = 1;  // TRL num_iterations (mu)
  std::size_t minibatch_size = 0;   // rows per optimizer update; 0 = the whole batch (TRL: one update
                                    // per generation batch with its default steps_per_generation)
  std::size_t microbatch_size = 16; // rows per forward/backward (gradients accumulated); memory only
  double lr = 1e-4;                 // peak; TRL 1e-6 for pre-trained models, small models take more
  double weight_decay = 0.0;        // TRL (transformers) default
  double max_grad_norm = 1.0;       // TRL (transformers) default; 0 = no clipping
};

// What the last step saw, in batch order (group g = rows g * G .. g * G + G - 1).
struct GrpoStepRecord {
  std::vector<std::string> prompts;  // each prompt repeated group_size times
  std::vector<std::string> texts;    // the sampled answers
  std::vector<double> scores;        // the reward model's scores
  std::vector<double> advantages;    // the advantages the loss used (float values, widened)
};

template <rlxf::Policy Pol>
class BasicGrpo {
 public:
  using TextPolicy = model::BasicTextPolicy<Pol>;

  BasicGrpo(TextPolicy& policy, const GrpoConfig& cfg)
      : cfg_(validated(cfg)),
        reference_(policy.policy()),
        params_(policy.policy().parameters(false)),
        optimizer_(params_, {.lr = cfg.lr, .weight_decay = cfg.weight_decay}, optim::decay_except_bias_and_norm),
        policy_(&policy.policy()) {}

  const GrpoConfig& config() const { return cfg_; }
  std::size_t steps_done() const { return steps_; }
  const Pol& reference() const { return reference_; }
  const GrpoStepRecord& last_step() const { return last_; }

  // Metrics (TRL names): reward, reward_std (mean of the groups' stds), frac_reward_zero_std,
  // objective/scores (= reward), kl (token mean of k3 between the sampling policy and the
  // reference, before the updates; TRL measures it inside the loss, which is the same with one
  // update per step; 0 when beta = 0, as the reference is then not run), entropy, clip_ratio (= clip_ratio/region_mean), clip_ratio/low_mean,
  // clip_ratio/high_mean, loss, ratio (token mean of pi / pi_old in the updates; rlxf's),
  // completions/mean_length (answer tokens, EOS included), lr. Update statistics are means
  // over the updates of the step.
  template <RewardModel R>
  StepMetrics step(TextPolicy& policy, const R& rm, std::span<const std::string> prompts, Rng& rng) {
    RLXF_REQUIRE(&policy.policy() == policy_, "Grpo::step: a different policy than the one Grpo was built with");
    RLXF_REQUIRE(!prompts.empty(), "Grpo::step: no prompts");
    const std::size_t G = cfg_.group_size;
    // 1. Rollout: every prompt G times, consecutively; scores; group-relative advantages.
    GrpoStepRecord rec;
    rec.prompts.reserve(prompts.size() * G);
    for (const std::string& p : prompts)
      for (std::size_t g = 0; g < G; ++g) rec.prompts.push_back(p);
    model::Rollout rollout = policy.sample(rec.prompts, cfg_.generation, rng);
    rec.scores = rm.score(std::span<const std::string>(rec.prompts), std::span<const std::string>(rollout.texts));
    const model::SequenceBatch& batch = rollout.batch;
    const std::size_t B = batch.rows(), N = batch.response_width();
    RLXF_REQUIRE(rec.scores.size() == B, "Grpo::step: the reward model returned ", rec.scores.size(),
                 " scores for ", B, " answers");
    for (std::size_t i = 0; i < B; ++i)
      RLXF_REQUIRE(std::isfinite(rec.scores[i]), "Grpo::step: the reward model returned ", rec.scores[i],
                   " for answer ", i);
    std::vector<double> adv(B);
    grpo_advantages<double>(rec.scores, adv, G, {.scale = cfg_.scale_rewards});
    std::vector<float> advantages(B);
    rec.advantages.resize(B);
    for (std::size_t i = 0; i < B; ++i) {
      advantages[i] = static_cast<float>(adv[i]);
      rec.advantages[i] = static_cast<double>(advantages[i]);
    }

    // 2. Old and reference log-probs at the sampling temperature, once, microbatch by microbatch.
    const model::Mask mask = batch.response_mask();
    const std::span<const std::uint8_t> m(mask.data(), mask.size());
    const double T = cfg_.generation.temperature;
    const bool use_ref = cfg_.loss.beta > 0;
    Tensor<float, 2> old = zeros<float, 2>({B, N}), ref = zeros<float, 2>({B, N});
    double entropy_sum = 0;
    std::vector<std::size_t> all(B);
    std::iota(all.begin(), all.end(), std::size_t{0});
    for (std::size_t lo = 0; lo < B; lo += cfg_.microbatch_size) {
      const std::span<const std::size_t> rows(all.data() + lo, std::min(B, lo + cfg_.microbatch_size) - lo);
      const model::SequenceBatch mb = batch.select(rows);
      const model::Mask mb_mask = mb.response_mask();
      typename Pol::Cache c;
      const typename Pol::Outputs out = policy_->forward(mb, T, false, c);
      scatter(out.logprobs, rows, old);
      const Tensor<float, 2> h = policy_->entropies(c);
      entropy_sum += masked_sum({h.data(), h.size()}, {mb_mask.data(), mb_mask.size()}).first;
      if (use_ref) {
        typename Pol::Cache rc;
        scatter(reference_.forward(mb, T, false, rc).logprobs, rows, ref);
      }
    }
    std::size_t tokens = 0;
    for (std::uint8_t v : mask) tokens += v;
    double kl_before = 0;
    if (use_ref) {
      Tensor<float, 2> kl = zeros<float, 2>({B, N});
      token_kl<float>(span_of(old), span_of(ref), m, span_of(kl), {}, {.estimator = KlEstimator::k3});
      for (std::size_t i = 0; i < B * N; ++i)
        if (m[i]) kl_before += static_cast<double>(kl.data()[i]);
      kl_before /= static_cast<double>(std::max<std::size_t>(tokens, 1));
    }

    // 3. Updates: mu passes over the batch, one AdamW step per minibatch.
    const std::size_t mini = cfg_.minibatch_size == 0 ? B : std::min(cfg_.minibatch_size, B);
    double loss_sum = 0, clip_sum = 0, low_sum = 0, high_sum = 0, ratio_sum = 0;
    std::size_t updates = 0;
    std::vector<std::size_t> order = all;
    const double lr_used = learning_rate();
    for (std::size_t it = 0; it < cfg_.iterations_per_step; ++it) {
      if (mini < B)  // one minibatch: its order does not matter
        for (std::size_t i = B; i-- > 1;)
          std::swap(order[i], order[rng.next_below(static_cast<std::uint32_t>(i + 1))]);
      for (std::size_t lo = 0; lo < B; lo += mini) {
        const std::span<const std::size_t> minibatch(order.data() + lo, std::min(B, lo + mini) - lo);
        const std::size_t b_mini = minibatch.size();
        const auto planned = nn::planned_step(params_, nn::step_key(b_mini, batch.tokens.shape()[1]));
        std::size_t n_mini = 0;
        for (std::size_t r : minibatch)
          for (std::size_t i = 0; i < N; ++i) n_mini += mask(r, i);
        optimizer_.zero_grad();
        double loss = 0, clip = 0, low = 0, high = 0, ratio = 0;
        for (std::size_t mlo = 0; mlo < b_mini; mlo += cfg_.microbatch_size) {
          const std::span<const std::size_t> rows = minibatch.subspan(mlo, std::min(b_mini - mlo, cfg_.microbatch_size));
          const std::size_t b = rows.size();
          const model::SequenceBatch mb = batch.select(rows);
          const model::Mask mb_mask = mb.response_mask();
          const std::span<const std::uint8_t> mm(mb_mask.data(), mb_mask.size());
          std::size_t n_micro = 0;
          for (std::uint8_t v : mb_mask) n_micro += v;
          const Tensor<float, 2> logp_old = gather(old, rows), logp_ref = use_ref ? gather(ref, rows) : Tensor<float, 2>{};
          std::vector<float> a(b);
          for (std::size_t k = 0; k < b; ++k) a[k] = advantages[rows[k]];
          typename Pol::Cache c;
          const typename Pol::Outputs now = policy_->forward(mb, T, false, c);
          Tensor<float, 2> dlogp = zeros<float, 2>({b, N});
          const GrpoLossStats st = grpo_loss<float>(
              span_of(now.logprobs), span_of(logp_old), use_ref ? span_of(logp_ref) : std::span<const float>{}, a, mm,
              span_of(dlogp), b, N, cfg_.loss);
          // The microbatch's share of the minibatch loss (grpo_loss normalises by its own rows).
          const double token_share = static_cast<double>(n_micro) / static_cast<double>(n_mini);
          const double share = cfg_.loss.aggregation == LossAggregation::token_mean
                                   ? token_share
                                   : static_cast<double>(b) / static_cast<double>(b_mini);
          dlogp *= static_cast<float>(share);
          policy_->backward(dlogp, nullptr, c);
          loss += share * st.loss;
          clip += token_share * st.clip_ratio, low += token_share * st.clip_ratio_low;
          high += token_share * st.clip_ratio_high;
          ratio += token_share * mean_ratio(now.logprobs, logp_old, mb_mask, cfg_.loss.log_ratio_clamp);
        }
        const double norm = optim::grad_norm(params_);
        RLXF_REQUIRE(std::isfinite(loss) && std::isfinite(norm), "Grpo: non-finite loss or gradient at step ",
                     steps_, " (loss ", loss, ", gradient norm ", norm, ")");
        if (cfg_.max_grad_norm > 0)
          optim::clip_grad_norm(params_, cfg_.max_grad_norm);
        optimizer_.set_lr(lr_used);
        optimizer_.step();
        loss_sum += loss, clip_sum += clip, low_sum += low, high_sum += high, ratio_sum += ratio;
        ++updates;
      }
    }
    ++steps_;

    // 4. Metrics.
    double reward = 0, reward_std = 0, zero_std = 0;
    const std::size_t groups = B / G;
    for (std::size_t g = 0; g < groups; ++g) {
      double mean = 0, ss = 0;
      for (std::size_t i = g * G; i < (g + 1) * G; ++i) mean += rec.scores[i];
      mean /= static_cast<double>(G);
      for (std::size_t i = g * G; i < (g + 1) * G; ++i) ss += (rec.scores[i] - mean) * (rec.scores[i] - mean);
      const double sd = std::sqrt(ss / static_cast<double>(G - 1));
      reward += mean / static_cast<double>(groups);
      reward_std += sd / static_cast<double>(groups);
      zero_std += (sd == 0 ? 1.0 : 0.0) / static_cast<double>(groups);
    }
    rec.texts = std::move(rollout.texts);
    last_ = std::move(rec);
    const auto n = static_cast<double>(updates);
    return {{"reward", reward},
            {"reward_std", reward_std},
            {"frac_reward_zero_std", zero_std},
            {"objective/scores", reward},
            {"kl", kl_before},
            {"entropy", entropy_sum / static_cast<double>(std::max<std::size_t>(tokens, 1))},
            {"clip_ratio", clip_sum / n},
            {"clip_ratio/low_mean", low_sum / n},
            {"clip_ratio/high_mean", high_sum / n},
            {"clip_ratio/region_mean", clip_sum / n},
            {"loss", loss_sum / n},
            {"ratio", ratio_sum / n},
            {"completions/mean_length", static_cast<double>(tokens) / static_cast<double>(B)},
            {"lr", lr_used}};
  }

  // The optimizer's moments and the step count (the KL and score fields stay default: GRPO has
  // no KL controller and no running score statistics).
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
  static const GrpoConfig& validated(const GrpoConfig& c) {
    with_context("GrpoConfig.generation", [&] { model::validate(c.generation); });
    internal::require_optimizer_options("GrpoConfig", c.lr, c.weight_decay, c.max_grad_norm);
    RLXF_REQUIRE(c.steps > 0, "GrpoConfig.steps must be > 0");
    RLXF_REQUIRE(c.group_size >= 2, "GrpoConfig.group_size must be >= 2 (the group std needs two samples), got ",
                 c.group_size);
    RLXF_REQUIRE(c.iterations_per_step > 0, "GrpoConfig.iterations_per_step must be > 0");
    RLXF_REQUIRE(c.microbatch_size > 0, "GrpoConfig.microbatch_size must be > 0");
    RLXF_REQUIRE(std::isfinite(c.loss.beta) && c.loss.beta >= 0, "GrpoConfig.loss.beta must be >= 0, got ",
                 c.loss.beta);
    RLXF_REQUIRE(std::isfinite(c.generation.temperature) && c.generation.temperature > 0,
                 "GrpoConfig.generation.temperature must be > 0, got ", c.generation.temperature);
    RLXF_REQUIRE(c.generation.top_k == 0 && c.generation.top_p == 1.0,
                 "GrpoConfig.generation: top_k/top_p must be off during GRPO rollouts (the ratio and KL "
                 "assume the full softmax(z / T))");
    RLXF_REQUIRE(!c.generation.greedy, "GrpoConfig.generation: rollouts must sample, not decode greedily");
    return c;
  }

  // Linear decay to zero over the run, by rollout step (every update of a step uses its rate).
  double learning_rate() const {
    return cfg_.lr * std::max(0.0, 1.0 - static_cast<double>(steps_) / static_cast<double>(cfg_.steps));
  }

  static std::span<float> span_of(Tensor<float, 2>& t) { return {t.data(), t.size()}; }
  static std::span<const float> span_of(const Tensor<float, 2>& t) { return {t.data(), t.size()}; }

  // dst's rows `rows` = src's rows 0.. ; the reverse.
  static void scatter(const Tensor<float, 2>& src, std::span<const std::size_t> rows, Tensor<float, 2>& dst) {
    for (std::size_t k = 0; k < rows.size(); ++k) xt::view(dst, rows[k]) = xt::view(src, k);
  }
  static Tensor<float, 2> gather(const Tensor<float, 2>& src, std::span<const std::size_t> rows) {
    Tensor<float, 2> out = zeros<float, 2>({rows.size(), src.shape()[1]});
    for (std::size_t k = 0; k < rows.size(); ++k) xt::view(out, k) = xt::view(src, rows[k]);
    return out;
  }

  // Token mean of exp(clamp(logp - logp_old)) over the mask.
  static double mean_ratio(const Tensor<float, 2>& logp, const Tensor<float, 2>& logp_old, const model::Mask& mask,
                           double clamp) {
    double s = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i < mask.size(); ++i)
      if (mask.data()[i]) {
        const double lr = static_cast<double>(logp.data()[i]) - static_cast<double>(logp_old.data()[i]);
        s += std::exp(std::clamp(lr, -clamp, clamp));
        ++n;
      }
    return n > 0 ? s / static_cast<double>(n) : 1.0;
  }

  GrpoConfig cfg_;
  Pol reference_;
  using Params = decltype(std::declval<Pol&>().parameters(false));

  Params params_;
  optim::AdamWFor<Params> optimizer_;
  std::size_t steps_ = 0;
  Pol* policy_;
  GrpoStepRecord last_;
};

using Grpo = BasicGrpo<model::Policy<float>>;

static_assert(Algorithm<Grpo, model::TextPolicy, reward::MonaRewardModel>);

}  // namespace rlxf::algo
