#pragma once
// Rejection sampling fine-tuning: best-of-n, then SFT on the winners (RAFT, Dong et al. 2023;
// ReST's Grow/Improve, Gulcehre et al. 2023; TRL BestOfNSampler: n = 4, keep 1). One step:
// - sample samples_per_prompt answers to each prompt (temperature 1 by default) and score them
//   with the reward model;
// - keep the best answer of each prompt (the first of equal scores), or every answer whose
//   score is >= the `quantile`-quantile of the step's scores (numpy's linear interpolation; a
//   ReST-style threshold, at least the best answer is always kept);
// - SFT on the kept (prompt, answer) pairs, the sampled tokens as they are (EOS included when
//   the answer produced it): sft_loss (algo/sft.hpp), the mean answer-token NLL, sft_epochs
//   passes of shuffled minibatches, AdamW with the learning rate annealed linearly to zero
//   over the run, gradient clipping.
//
//   algo::RejectionSampling rs(policy, {.steps = 50});
//   for (...) { auto metrics = rs.step(policy, reward_model, prompts, rng); }
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlxf/algo/algorithm.hpp"
#include "rlxf/algo/sft.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/clip.hpp"
#include "rlxf/reward/mona_reward_model.hpp"

namespace rlxf::algo {

struct RejectionSamplingConfig {
  enum Keep {
    best,            // the best answer of each prompt (RAFT; TRL BestOfNSampler keeps 1)
    above_quantile,  // every answer scoring >= the quantile of the step's scores (ReST threshold)
  };
  std::size_t samples_per_prompt = 4;  // TRL BestOfNSampler n = 4
  Keep keep = best;
  double quantile = 0.75;              // for above_quantile: keeps about the top quarter
  model::GenerationConfig generation{.max_new_tokens = 32, .temperature = 1.0};
  double lr = 1e-4;                    // peak (as Ppo / Dpo)
  double weight_decay = 0.0;
  double max_grad_norm = 1.0;          // 0 = no clipping
  std::size_t sft_epochs = 1;          // passes over a step's kept answers
  std::size_t minibatch_size = 16;     // kept answers per update
  std::size_t steps = 100;             // steps in the run: the learning rate reaches 0 at the end
};

// What the last step sampled and kept: answers[prompt * samples_per_prompt + j] is sample j
// of prompt `prompt`; `kept` lists indices into answers, ascending.
struct RejectionSamplingBatch {
  std::vector<std::string> prompts;  // one per answer
  std::vector<std::string> answers;
  std::vector<double> scores;
  std::vector<std::size_t> kept;
};

template <rlxf::Policy Pol>
class BasicRejectionSampling {
 public:
  using TextPolicy = model::BasicTextPolicy<Pol>;

  BasicRejectionSampling(TextPolicy& policy, const RejectionSamplingConfig& cfg)
      : cfg_(validated(cfg)),
        params_(policy.policy().parameters(false)),
        optimizer_(params_, {.lr = cfg.lr, .weight_decay = cfg.weight_decay}, optim::decay_except_bias_and_norm),
        policy_(&policy.policy()) {}

  const RejectionSamplingConfig& config() const { return cfg_; }
  std::size_t steps_done() const { return steps_; }
  const RejectionSamplingBatch& last_batch() const { return last_; }

  // The indices (ascending) of the answers kept from `scores`, samples_per_prompt answers per
  // prompt in a row, by the config's rule.
  static std::vector<std::size_t> select(std::span<const double> scores, const RejectionSamplingConfig& cfg) {
    const std::size_t n = cfg.samples_per_prompt;
    RLXF_REQUIRE(n > 0 && !scores.empty() && scores.size() % n == 0, "RejectionSampling::select: ", scores.size(),
                 " scores for ", n, " samples per prompt");
    std::vector<std::size_t> kept;
    if (cfg.keep == RejectionSamplingConfig::best) {
      for (std::size_t lo = 0; lo < scores.size(); lo += n) {
        std::size_t arg = lo;
        for (std::size_t j = lo + 1; j < lo + n; ++j)
          if (scores[j] > scores[arg]) arg = j;
        kept.push_back(arg);
      }
    } else {
      std::vector<double> sorted(scores.begin(), scores.end());
      std::sort(sorted.begin(), sorted.end());
      const double h = static_cast<double>(sorted.size() - 1) * cfg.quantile;
      const auto i = static_cast<std::size_t>(std::floor(h));
      const double threshold = i + 1 >= sorted.size()
                                   ? sorted.back()
                                   : std::min(sorted[i + 1], sorted[i] + (h - static_cast<double>(i)) * (sorted[i + 1] - sorted[i]));
      for (std::size_t j = 0; j < scores.size(); ++j)
        if (scores[j] >= threshold) kept.push_back(j);
    }
    return kept;
  }

  template <RewardModel R>
  StepMetrics step(TextPolicy& policy, const R& rm, std::span<const std::string> prompts, Rng& rng) {
    RLXF_REQUIRE(&policy.policy() == policy_,
                 "RejectionSampling::step: a different policy than the one RejectionSampling was built with");
    RLXF_REQUIRE(!prompts.empty(), "RejectionSampling::step: no prompts");
    const std::size_t n = cfg_.samples_per_prompt, B = prompts.size() * n;
    // 1. n answers per prompt, scored.
    RejectionSamplingBatch batch;
    for (const std::string& p : prompts)
      batch.prompts.insert(batch.prompts.end(), n, p);
    const model::Rollout rollout = policy.sample(batch.prompts, cfg_.generation, rng);
    batch.answers = rollout.texts;
    batch.scores = rm.score(batch.prompts, batch.answers);
    RLXF_REQUIRE(batch.scores.size() == B, "RejectionSampling::step: the reward model returned ",
                 batch.scores.size(), " scores for ", B, " answers");
    for (std::size_t r = 0; r < B; ++r)
      RLXF_REQUIRE(std::isfinite(batch.scores[r]), "RejectionSampling::step: the reward model's score of answer ", r,
                   " is ", batch.scores[r]);

    // 2. The winners.
    batch.kept = select(batch.scores, cfg_);
    const std::size_t K = batch.kept.size();
    const model::SequenceBatch kept = rollout.batch.select(batch.kept);

    // 3. SFT on them.
    const double lr_used = learning_rate();
    double loss_sum = 0;
    std::size_t updates = 0;
    std::vector<std::size_t> order(K);
    for (std::size_t epoch = 0; epoch < cfg_.sft_epochs; ++epoch) {
      std::iota(order.begin(), order.end(), std::size_t{0});
      for (std::size_t i = K; i-- > 1;)
        std::swap(order[i], order[rng.next_below(static_cast<std::uint32_t>(i + 1))]);
      for (std::size_t lo = 0; lo < K; lo += cfg_.minibatch_size) {
        const std::span<const std::size_t> rows(order.data() + lo, std::min(K, lo + cfg_.minibatch_size) - lo);
        const model::SequenceBatch mb = kept.select(rows);
        const auto planned = nn::planned_step(params_, nn::step_key(mb.rows(), mb.tokens.shape()[1]));
        optimizer_.zero_grad();
        const double loss = sft_loss(*policy_, mb, true);
        const double norm = optim::grad_norm(params_);
        RLXF_REQUIRE(std::isfinite(loss) && std::isfinite(norm), "RejectionSampling: non-finite loss or gradient at step ",
                     steps_, " (SFT loss ", loss, ", gradient norm ", norm, ")");
        if (cfg_.max_grad_norm > 0)
          optim::clip_grad_norm(params_, cfg_.max_grad_norm);
        optimizer_.set_lr(learning_rate());
        optimizer_.step();
        loss_sum += loss;
        ++updates;
      }
    }
    ++steps_;

    double score_mean = 0, kept_mean = 0, length = 0;
    for (double s : batch.scores) score_mean += s / static_cast<double>(B);
    for (std::size_t k : batch.kept) kept_mean += batch.scores[k] / static_cast<double>(K);
    const model::Mask mask = rollout.batch.response_mask();
    for (std::uint8_t v : mask) length += v / static_cast<double>(B);
    last_ = std::move(batch);
    return {{"objective/scores", score_mean},
            {"rs/kept_score", kept_mean},
            {"rs/kept", static_cast<double>(K)},
            {"loss/sft", loss_sum / static_cast<double>(updates)},
            {"completions/mean_length", length},
            {"lr", lr_used}};
  }

  // The optimizer's moments and the step count (the KL and moments fields are unused).
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
  static const RejectionSamplingConfig& validated(const RejectionSamplingConfig& c) {
    with_context("RejectionSamplingConfig.generation", [&] { model::validate(c.generation); });
    internal::require_optimizer_options("RejectionSamplingConfig", c.lr, c.weight_decay, c.max_grad_norm);
    RLXF_REQUIRE(c.samples_per_prompt > 0, "RejectionSamplingConfig.samples_per_prompt must be > 0");
    RLXF_REQUIRE(c.keep == RejectionSamplingConfig::best || c.keep == RejectionSamplingConfig::above_quantile,
                 "RejectionSamplingConfig.keep: unknown rule ", static_cast<int>(c.keep));
    RLXF_REQUIRE(c.quantile >= 0 && c.quantile <= 1, "RejectionSamplingConfig.quantile must be in [0, 1], got ",
                 c.quantile);
    RLXF_REQUIRE(c.steps > 0, "RejectionSamplingConfig.steps must be > 0");
    RLXF_REQUIRE(c.sft_epochs > 0, "RejectionSamplingConfig.sft_epochs must be > 0");
    RLXF_REQUIRE(c.minibatch_size > 0, "RejectionSamplingConfig.minibatch_size must be > 0");
    RLXF_REQUIRE(!c.generation.greedy || c.samples_per_prompt == 1,
                 "RejectionSamplingConfig.generation: greedy decoding gives one answer per prompt; sample instead");
    return c;
  }

  double learning_rate() const {
    return cfg_.lr * std::max(0.0, 1.0 - static_cast<double>(steps_) / static_cast<double>(cfg_.steps));
  }

  RejectionSamplingConfig cfg_;
  using Params = decltype(std::declval<Pol&>().parameters(false));

  Params params_;
  optim::AdamWFor<Params> optimizer_;
  RejectionSamplingBatch last_;
  std::size_t steps_ = 0;
  Pol* policy_;
};

using RejectionSampling = BasicRejectionSampling<model::Policy<float>>;

static_assert(Algorithm<RejectionSampling, model::TextPolicy, reward::MonaRewardModel>);

}  // namespace rlxf::algo
