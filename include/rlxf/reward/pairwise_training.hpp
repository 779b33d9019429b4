#pragma once
// Training a scalar reward model from preference pairs with the Bradley-Terry loss
// -log sigmoid(r_chosen - r_rejected - margin) (optional centering term), through the shared
// loop of training_loop.hpp. One epoch by default, as the RLHF recipe advises (a second epoch
// overfits preference data). The model is a SequenceClassifier with one output: its value is
// the reward. Pairs from MONA outcomes: data::outcome_pairs (data/preference_pairs.hpp).
//
//   model::SequenceClassifier<float> scorer(encoder_cfg, 1, rng);
//   const auto report = reward::train_pairwise(scorer, train_pairs, val_pairs);
//   std::vector<double> r = reward::scalar_rewards(scorer, sequences);
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <utility>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/range.hpp"
#include "rlxf/model/sequence_classifier.hpp"
#include "rlxf/reward/losses.hpp"
#include "rlxf/reward/training_loop.hpp"

namespace rlxf::reward {

// Token sequences of a preferred and a dispreferred answer; margin m >= 0 asks for
// r_chosen - r_rejected > m (Llama 2's graded preferences), 0 for a plain preference.
struct PreferencePair {
  std::vector<std::int32_t> chosen, rejected;
  double margin = 0;
};

struct PairwiseTrainConfig {
  TrainOptions train{.epochs = 1};
  double center_rewards_coefficient = 0;  // TRL's; 0.01 is its suggestion when on
};

// The scalar reward of each sequence, in batches of `batch_size`.
template <class B, class T = typename B::accum_type>
std::vector<double> scalar_rewards(const model::BasicSequenceClassifier<B>& model,
                                   std::span<const std::vector<std::int32_t>* const> sequences,
                                   std::size_t batch_size = 256) {
  RLXF_REQUIRE(model.classes() == 1, "scalar_rewards: the model has ", model.classes(),
               " outputs, expected 1 (a scalar reward head)");
  std::vector<double> r(sequences.size());
  for (std::size_t lo = 0; lo < sequences.size(); lo += batch_size) {
    const std::size_t hi = std::min(sequences.size(), lo + batch_size);
    const TokenBatch b = pad_batch(sequences.subspan(lo, hi - lo));
    typename model::BasicSequenceClassifier<B>::Cache cache;
    const auto scores = model.forward(b.ids, nullptr, &b.mask, cache);
    const auto& out = nn::accum_values<B>(scores);
    for (std::size_t i = lo; i < hi; ++i)
      r[i] = static_cast<double>(out(i - lo, 0, 0));
  }
  return r;
}

template <class B, class T = typename B::accum_type>
TrainReport train_pairwise(model::BasicSequenceClassifier<B>& model, std::span<const PreferencePair> train,
                           std::span<const PreferencePair> validation,
                           const PairwiseTrainConfig& cfg = {}, const ProgressFn& progress = {}) {
  RLXF_REQUIRE(model.classes() == 1, "train_pairwise: the model has ", model.classes(),
               " outputs, expected 1 (a scalar reward head)");
  require_in("PairwiseTrainConfig.center_rewards_coefficient", cfg.center_rewards_coefficient, Range::closed(0, 1e6));
  const BradleyTerryOptions bt{.center_rewards_coefficient = cfg.center_rewards_coefficient};

  // Chosen and rejected answers go through the model as one batch of 2P sequences.
  const auto step = [&](std::span<const std::size_t> batch) {
    const std::size_t p = batch.size();
    std::vector<const std::vector<std::int32_t>*> seqs(2 * p);
    std::vector<T> margin(p);
    for (std::size_t k = 0; k < p; ++k) {
      seqs[k] = &train[batch[k]].chosen;
      seqs[p + k] = &train[batch[k]].rejected;
      margin[k] = static_cast<T>(train[batch[k]].margin);
    }
    const TokenBatch b = pad_batch(std::span<const std::vector<std::int32_t>* const>(seqs));
    typename model::BasicSequenceClassifier<B>::Cache cache;
    const auto scores = model.forward(b.ids, nullptr, &b.mask, cache);
    const auto& out = nn::accum_values<B>(scores);
    auto dout = zeros<T, 3>({2 * p, 1, 1});
    const std::span<const T> r(out.data(), 2 * p);
    const std::span<T> d(dout.data(), 2 * p);
    const PairwiseLoss loss =
        bradley_terry_loss<T>(r.first(p), r.subspan(p), margin, d.first(p), d.subspan(p), bt);
    model.backward(nn::activation_from_host(model.backend().get(), dout), cache);
    return loss.loss;
  };
  const auto validate = [&]() -> std::pair<double, double> {
    std::vector<const std::vector<std::int32_t>*> chosen, rejected;
    std::vector<double> margin;
    for (const auto& pair : validation) {
      chosen.push_back(&pair.chosen);
      rejected.push_back(&pair.rejected);
      margin.push_back(pair.margin);
    }
    const auto rc = scalar_rewards(model, std::span<const std::vector<std::int32_t>* const>(chosen));
    const auto rr = scalar_rewards(model, std::span<const std::vector<std::int32_t>* const>(rejected));
    const PairwiseLoss loss = bradley_terry_loss<double>(rc, rr, margin, {}, {}, bt);
    return {loss.loss, loss.accuracy};
  };
  return run_training(model.parameters(), train.size(), cfg.train, step,
                      validation.empty() ? std::function<std::pair<double, double>()>{}
                                         : std::function<std::pair<double, double>()>(validate),
                      progress);
}

}  // namespace rlxf::reward
