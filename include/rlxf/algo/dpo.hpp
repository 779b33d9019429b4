#pragma once
// Direct Preference Optimization (Rafailov et al. 2023) over a TextPolicy, with cDPO (label
// smoothing) and IPO through DpoOptions (algo/dpo_loss.hpp):
// - the reference is a frozen copy of the policy when Dpo is built (the SFT model);
// - a sequence's log-prob is the SUM of its answer-token log-probs at temperature 1 (EOS
//   included; prompt and pads excluded), under the policy and under the reference; the
//   reference's are computed once per pair and cached;
// - the loss (dpo_loss) gives d L / d (sequence log-prob); every answer token of the sequence
//   gets that as its d L / d log-prob, which Policy::backward takes into the decoder;
// - AdamW with the learning rate annealed linearly to zero over the run (by step), gradient
//   clipping, epochs_per_step passes of shuffled minibatches of pairs.
// Two sources of pairs:
// - step(policy, reward_model, prompts, rng), online (RLAIF-style, Guo et al. 2024 "Direct
//   Language Model Alignment from Online AI Feedback"; TRL OnlineDPOTrainer): two answers
//   sampled per prompt, scored by the reward model; chosen = the higher score, rejected = the
//   lower; exact ties are skipped (pairs/ties). The sampled tokens are trained on as they are.
// - train_offline(policy, pairs, rng): (prompt, chosen, rejected) texts from a data set, each
//   answer encoded with EOS appended; reference log-probs cached by index in `pairs` (an entry
//   whose texts changed is recomputed).
//
//   algo::Dpo dpo(policy, {.steps = 100});                   // the reference is a frozen copy
//   for (...) { auto metrics = dpo.step(policy, reward_model, prompts, rng); }
// algo::BasicDpo<P> runs over any rlxf::Policy P (model::BasicPolicy<B> on any backend);
// algo::Dpo is BasicDpo<model::Policy<float>>.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlxf/algo/algorithm.hpp"
#include "rlxf/algo/dpo_loss.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/clip.hpp"
#include "rlxf/reward/mona_reward_model.hpp"

namespace rlxf::algo {

// One preference from a data set: `chosen` is preferred to `rejected` as an answer to `prompt`.
struct PreferenceExample {
  std::string prompt, chosen, rejected;
};

struct DpoConfig {
  DpoOptions loss{};                 // beta 0.1, sigmoid (TRL, OpenRLHF); label_smoothing > 0 = cDPO; or ipo
  double lr = 1e-4;                  // peak; TRL 1e-6 for pre-trained models (OpenRLHF 5e-7), small models take more
  double weight_decay = 0.0;         // TRL (TrainingArguments)
  double max_grad_norm = 1.0;        // TRL, OpenRLHF; 0 = no clipping
  std::size_t steps = 100;           // steps in the run: the learning rate reaches 0 at the end
  std::size_t minibatch_size = 16;   // pairs per update
  model::GenerationConfig generation{.max_new_tokens = 32, .temperature = 1.0};  // online pairs
  std::size_t epochs_per_step = 1;   // passes over a step's pairs
  std::size_t max_answer_tokens = 64;  // offline answers are truncated to this, EOS included
};

// Per row of `batch`, the sum of its answer-token log-probs at temperature 1 (EOS included,
// prompt and pads excluded), computed in double and rounded to T.
template <rlxf::Policy P, class T = model::logprob_t<P>>
std::vector<T> sequence_logprobs(const P& policy, const model::SequenceBatch& batch) {
  typename P::Cache cache;
  const typename P::Outputs out = policy.forward(batch, 1.0, false, cache);
  const model::Mask mask = batch.response_mask();
  const std::size_t B = batch.rows(), N = batch.response_width();
  std::vector<T> sums(B);
  for (std::size_t r = 0; r < B; ++r) {
    double s = 0;
    for (std::size_t i = 0; i < N; ++i)
      if (mask(r, i)) s += static_cast<double>(out.logprobs(r, i));
    sums[r] = static_cast<T>(s);
  }
  return sums;
}

// The DPO-family loss of M pairs laid out as 2M rows of `pairs`: rows [0, M) the chosen
// answers, rows [M, 2M) the rejected ones (row k and row M + k share a prompt). ref_chosen and
// ref_rejected (M) are the reference's sequence log-probs. With `grad`, the gradient of the
// loss is accumulated into the policy: d L / d logp(token) = d L / d (sequence log-prob) on
// every answer token of the row.
template <rlxf::Policy P, class T = model::logprob_t<P>>
DpoStats dpo_batch_loss(P& policy, const model::SequenceBatch& pairs, std::span<const std::type_identity_t<T>> ref_chosen,
                        std::span<const std::type_identity_t<T>> ref_rejected, const DpoOptions& opt, bool grad) {
  const std::size_t rows = pairs.rows(), M = rows / 2, N = pairs.response_width();
  RLXF_REQUIRE(rows > 0 && rows % 2 == 0, "dpo_batch_loss: ", rows, " rows; expected 2 per pair (chosen, rejected)");
  RLXF_REQUIRE(ref_chosen.size() == M && ref_rejected.size() == M, "dpo_batch_loss: ", M, " pairs but ",
               ref_chosen.size(), " reference chosen and ", ref_rejected.size(), " reference rejected log-probs");
  typename P::Cache cache;
  const typename P::Outputs out = policy.forward(pairs, 1.0, false, cache);
  const model::Mask mask = pairs.response_mask();
  std::vector<T> seq(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    double s = 0;
    for (std::size_t i = 0; i < N; ++i)
      if (mask(r, i)) s += static_cast<double>(out.logprobs(r, i));
    seq[r] = static_cast<T>(s);
  }
  std::vector<T> d(grad ? rows : 0);
  const std::span<const T> all(seq);
  const std::span<T> dall(d);
  const DpoStats st = dpo_loss<T>(all.first(M), all.subspan(M), ref_chosen, ref_rejected,
                                  grad ? dall.first(M) : std::span<T>{}, grad ? dall.subspan(M) : std::span<T>{}, opt);
  if (grad) {
    Tensor<T, 2> dlogp = zeros<T, 2>({rows, N});
    for (std::size_t r = 0; r < rows; ++r)
      for (std::size_t i = 0; i < N; ++i)
        if (mask(r, i)) dlogp(r, i) = d[r];
    policy.backward(dlogp, nullptr, cache);
  }
  return st;
}

template <rlxf::Policy Pol>
class BasicDpo {
 public:
  using TextPolicy = model::BasicTextPolicy<Pol>;

  BasicDpo(TextPolicy& policy, const DpoConfig& cfg)
      : cfg_(validated(cfg)),
        reference_(policy.policy()),
        params_(policy.policy().parameters(false)),
        optimizer_(params_, {.lr = cfg.lr, .weight_decay = cfg.weight_decay}, optim::decay_except_bias_and_norm),
        policy_(&policy.policy()) {}

  const DpoConfig& config() const { return cfg_; }
  std::size_t steps_done() const { return steps_; }
  const Pol& reference() const { return reference_; }

  // Online DPO: two sampled answers per prompt, ranked by the reward model.
  template <RewardModel R>
  StepMetrics step(TextPolicy& policy, const R& rm, std::span<const std::string> prompts, Rng& rng) {
    RLXF_REQUIRE(&policy.policy() == policy_, "Dpo::step: a different policy than the one Dpo was built with");
    RLXF_REQUIRE(!prompts.empty(), "Dpo::step: no prompts");
    const std::size_t P = prompts.size();
    // 1. Two answers per prompt (rows k and P + k), both scored.
    std::vector<std::string> twice(prompts.begin(), prompts.end());
    twice.insert(twice.end(), prompts.begin(), prompts.end());
    const model::Rollout rollout = policy.sample(twice, cfg_.generation, rng);
    const std::vector<double> scores = rm.score(twice, rollout.texts);
    RLXF_REQUIRE(scores.size() == 2 * P, "Dpo::step: the reward model returned ", scores.size(), " scores for ",
                 2 * P, " answers");
    for (std::size_t r = 0; r < 2 * P; ++r)
      RLXF_REQUIRE(std::isfinite(scores[r]), "Dpo::step: the reward model's score of answer ", r, " is ", scores[r]);

    // 2. Pairs: chosen = the higher score; exact ties skipped.
    std::vector<std::size_t> chosen, rejected;
    std::size_t ties = 0;
    for (std::size_t k = 0; k < P; ++k) {
      if (scores[k] > scores[P + k]) {
        chosen.push_back(k), rejected.push_back(P + k);
      } else if (scores[k] < scores[P + k]) {
        chosen.push_back(P + k), rejected.push_back(k);
      } else {
        ++ties;
      }
    }
    const std::size_t M = chosen.size();

    // 3. Reference log-probs once per pair, then the updates.
    Totals t;
    const double lr_used = learning_rate();
    if (M > 0) {
      std::vector<std::size_t> rows = chosen;
      rows.insert(rows.end(), rejected.begin(), rejected.end());
      const model::SequenceBatch pairs = rollout.batch.select(rows);
      const std::vector<float> ref = sequence_logprobs(reference_, pairs);
      const std::vector<float> ref_c(ref.begin(), ref.begin() + static_cast<std::ptrdiff_t>(M));
      const std::vector<float> ref_r(ref.begin() + static_cast<std::ptrdiff_t>(M), ref.end());
      const auto batch_of = [&](std::span<const std::size_t> idx) {
        std::vector<std::size_t> r(idx.begin(), idx.end());
        for (std::size_t k : idx) r.push_back(M + k);
        return pairs.select(r);
      };
      t = train_pairs(M, batch_of, ref_c, ref_r, rng);
    }
    ++steps_;

    double score_mean = 0, length = 0;
    for (double s : scores) score_mean += s / static_cast<double>(2 * P);
    const model::Mask mask = rollout.batch.response_mask();
    for (std::uint8_t v : mask) length += v / static_cast<double>(2 * P);
    StepMetrics m = metrics(t, lr_used);
    m.emplace_back("objective/scores", score_mean);
    m.emplace_back("pairs/count", static_cast<double>(M));
    m.emplace_back("pairs/ties", static_cast<double>(ties));
    m.emplace_back("completions/mean_length", length);
    return m;
  }

  // Offline DPO: one step of epochs_per_step passes over `pairs` (a data set, or a batch of one).
  StepMetrics train_offline(TextPolicy& policy, std::span<const PreferenceExample> pairs, Rng& rng) {
    RLXF_REQUIRE(&policy.policy() == policy_, "Dpo::train_offline: a different policy than the one Dpo was built with");
    RLXF_REQUIRE(!pairs.empty(), "Dpo::train_offline: no pairs");
    const std::size_t M = pairs.size();
    const auto batch_of = [&](std::span<const std::size_t> idx) {
      std::vector<std::string> p, a;
      for (std::size_t k : idx) p.push_back(pairs[k].prompt), a.push_back(pairs[k].chosen);
      for (std::size_t k : idx) p.push_back(pairs[k].prompt), a.push_back(pairs[k].rejected);
      return policy.encode(p, a, cfg_.max_answer_tokens);
    };
    // Reference log-probs by index, computed in fixed chunks of minibatch_size pairs (so the
    // values do not depend on which entries were cached before).
    if (offline_ref_.size() < M) offline_ref_.resize(M);
    const std::size_t chunk = cfg_.minibatch_size;
    for (std::size_t lo = 0; lo < M; lo += chunk) {
      const std::size_t hi = std::min(M, lo + chunk);
      bool stale = false;
      for (std::size_t k = lo; k < hi; ++k)
        stale = stale || !offline_ref_[k].valid || offline_ref_[k].hash != hash_of(pairs[k]);
      if (!stale) continue;
      std::vector<std::size_t> idx(hi - lo);
      std::iota(idx.begin(), idx.end(), lo);
      const std::vector<float> ref = sequence_logprobs(reference_, batch_of(idx));
      for (std::size_t j = 0; j < idx.size(); ++j)
        offline_ref_[lo + j] = {hash_of(pairs[lo + j]), ref[j], ref[idx.size() + j], true};
    }
    std::vector<float> ref_c(M), ref_r(M);
    for (std::size_t k = 0; k < M; ++k) ref_c[k] = offline_ref_[k].chosen, ref_r[k] = offline_ref_[k].rejected;
    const double lr_used = learning_rate();
    const Totals t = train_pairs(M, batch_of, ref_c, ref_r, rng);
    ++steps_;
    StepMetrics m = metrics(t, lr_used);
    m.emplace_back("pairs/count", static_cast<double>(M));
    return m;
  }

  // The optimizer's moments and the step count (the KL and moments fields are unused). The
  // reference is not in it: a Dpo built the same way (from the same starting policy) has it.
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
  struct RefEntry {
    std::size_t hash = 0;
    float chosen = 0, rejected = 0;
    bool valid = false;
  };
  // Sums over the updates of a step, each weighted by its pairs.
  struct Totals {
    std::size_t pairs = 0;
    double loss = 0, chosen = 0, rejected = 0, accuracies = 0, logps_chosen = 0, logps_rejected = 0;
  };

  static const DpoConfig& validated(const DpoConfig& c) {
    with_context("DpoConfig.generation", [&] { model::validate(c.generation); });
    internal::require_optimizer_options("DpoConfig", c.lr, c.weight_decay, c.max_grad_norm);
    RLXF_REQUIRE(c.steps > 0, "DpoConfig.steps must be > 0");
    RLXF_REQUIRE(c.epochs_per_step > 0, "DpoConfig.epochs_per_step must be > 0");
    RLXF_REQUIRE(c.minibatch_size > 0, "DpoConfig.minibatch_size must be > 0");
    RLXF_REQUIRE(c.max_answer_tokens > 0, "DpoConfig.max_answer_tokens must be > 0");
    RLXF_REQUIRE(std::isfinite(c.loss.beta) && c.loss.beta > 0, "DpoConfig.loss.beta must be > 0, got ", c.loss.beta);
    RLXF_REQUIRE(c.loss.label_smoothing >= 0 && c.loss.label_smoothing < 0.5,
                 "DpoConfig.loss.label_smoothing must be in [0, 0.5), got ", c.loss.label_smoothing);
    RLXF_REQUIRE(c.loss.loss == PreferenceLossType::sigmoid || c.loss.label_smoothing == 0,
                 "DpoConfig.loss.label_smoothing applies to the sigmoid loss only");
    RLXF_REQUIRE(!c.generation.greedy,
                 "DpoConfig.generation: online pairs must sample (two greedy answers are the same answer)");
    return c;
  }

  // Linear decay to zero over the run, by step (every update of a step uses its rate).
  double learning_rate() const {
    return cfg_.lr * std::max(0.0, 1.0 - static_cast<double>(steps_) / static_cast<double>(cfg_.steps));
  }

  static std::size_t hash_of(const PreferenceExample& e) {
    const std::hash<std::string> h;
    std::size_t v = h(e.prompt);
    for (const std::string* s : {&e.chosen, &e.rejected})
      v ^= h(*s) + 0x9e3779b97f4a7c15ull + (v << 6) + (v >> 2);
    return v;
  }

  // epochs_per_step passes of shuffled minibatches over M pairs; batch_of(pair indices) lays
  // them out as dpo_batch_loss wants (chosen rows, then rejected rows).
  template <class BatchOf>
  Totals train_pairs(std::size_t M, const BatchOf& batch_of, std::span<const float> ref_c,
                     std::span<const float> ref_r, Rng& rng) {
    Totals t;
    std::vector<std::size_t> order(M);
    for (std::size_t epoch = 0; epoch < cfg_.epochs_per_step; ++epoch) {
      std::iota(order.begin(), order.end(), std::size_t{0});
      for (std::size_t i = M; i-- > 1;)
        std::swap(order[i], order[rng.next_below(static_cast<std::uint32_t>(i + 1))]);
      for (std::size_t lo = 0; lo < M; lo += cfg_.minibatch_size) {
        const std::span<const std::size_t> idx(order.data() + lo, std::min(M, lo + cfg_.minibatch_size) - lo);
        const std::size_t b = idx.size();
        std::vector<float> rc(b), rr(b);
        for (std::size_t j = 0; j < b; ++j) rc[j] = ref_c[idx[j]], rr[j] = ref_r[idx[j]];
        const model::SequenceBatch mb = batch_of(idx);
        const auto planned = nn::planned_step(params_, nn::step_key(mb.rows(), mb.tokens.shape()[1]));
        optimizer_.zero_grad();
        const DpoStats st = with_context("Dpo step " + std::to_string(steps_), [&] {
          return dpo_batch_loss(*policy_, mb, rc, rr, cfg_.loss, true);
        });
        const double norm = optim::grad_norm(params_);
        RLXF_REQUIRE(std::isfinite(st.loss) && std::isfinite(norm), "Dpo: non-finite loss or gradient at step ",
                     steps_, " (loss ", st.loss, ", gradient norm ", norm, ")");
        if (cfg_.max_grad_norm > 0)
          optim::clip_grad_norm(params_, cfg_.max_grad_norm);
        optimizer_.set_lr(learning_rate());
        optimizer_.step();
        const auto w = static_cast<double>(b);
        t.pairs += b;
        t.loss += w * st.loss, t.chosen += w * st.rewards_chosen, t.rejected += w * st.rewards_rejected;
        t.accuracies += w * st.rewards_accuracies;
        t.logps_chosen += w * st.logps_chosen, t.logps_rejected += w * st.logps_rejected;
      }
    }
    return t;
  }

  // Pair-weighted means over the step's updates, each taken before its update (as TRL logs);
  // all 0 when the step had no pairs (pairs/count says so).
  static StepMetrics metrics(const Totals& t, double lr) {
    const double n = t.pairs ? static_cast<double>(t.pairs) : 1.0;
    return {{"loss/dpo", t.loss / n},
            {"rewards/chosen", t.chosen / n},
            {"rewards/rejected", t.rejected / n},
            {"rewards/margins", (t.chosen - t.rejected) / n},
            {"rewards/accuracies", t.accuracies / n},
            {"logps/chosen", t.logps_chosen / n},
            {"logps/rejected", t.logps_rejected / n},
            {"lr", lr}};
  }

  DpoConfig cfg_;
  using Params = decltype(std::declval<Pol&>().parameters(false));

  Pol reference_;
  Params params_;
  optim::AdamWFor<Params> optimizer_;
  std::vector<RefEntry> offline_ref_;
  std::size_t steps_ = 0;
  Pol* policy_;
};

using Dpo = BasicDpo<model::Policy<float>>;

static_assert(Algorithm<Dpo, model::TextPolicy, reward::MonaRewardModel>);

}  // namespace rlxf::algo
