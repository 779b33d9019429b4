#pragma once
// Training a sequence classifier as a MET / Non-MET reward model: two-class cross-entropy
// (class weights optional) over token sequences, with the shared loop of training_loop.hpp
// (AdamW, warm-up + linear decay, clipping, early stopping on the validation log-loss), then
// temperature scaling fitted on the validation set.
//
//   std::vector<reward::LabelledSequence> train = ..., val = ...;   // ids: [CLS] ... [SEP]
//   model::SequenceClassifier<float> clf(encoder_cfg, 2, rng);
//   const auto fit = reward::train_classifier(clf, train, val, {.train = {.epochs = 3}});
//   std::vector<double> p = reward::met_probabilities(clf, sequences, fit.temperature);
#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/model/sequence_classifier.hpp"
#include "rlxf/reward/calibration.hpp"
#include "rlxf/reward/losses.hpp"
#include "rlxf/reward/training_loop.hpp"

namespace rlxf::reward {

// A token sequence (as the classifier reads it, special tokens included) and its label:
// 1 = MET (the positive class), 0 = Non-MET.
struct LabelledSequence {
  std::vector<std::int32_t> ids;
  std::uint8_t label = 0;
};

struct ClassifierTrainConfig {
  TrainOptions train{};
  bool balance_classes = false;  // weight classes n / (2 n_c) (scikit-learn's "balanced")
  bool fit_temperature = true;   // fit T on the validation set after training
};

struct ClassifierTrainResult {
  TrainReport report;
  double temperature = 1.0;  // P(MET) = sigmoid((z_met - z_non_met) / temperature)
};

// The MET logit z1 - z0 of each sequence, in batches of `batch_size`.
template <class B, class T = typename B::accum_type>
std::vector<double> met_logits(const model::BasicSequenceClassifier<B>& model,
                               std::span<const std::vector<std::int32_t>* const> sequences,
                               std::size_t batch_size = 256) {
  RLXF_REQUIRE(model.classes() == 2, "met_logits: the classifier has ", model.classes(),
               " classes, expected 2 (Non-MET, MET)");
  std::vector<double> z(sequences.size());
  for (std::size_t lo = 0; lo < sequences.size(); lo += batch_size) {
    const std::size_t hi = std::min(sequences.size(), lo + batch_size);
    const TokenBatch b = pad_batch(sequences.subspan(lo, hi - lo));
    typename model::BasicSequenceClassifier<B>::Cache cache;
    const auto out = model.forward(b.ids, nullptr, &b.mask, cache);
    const auto& logits = nn::accum_values<B>(out);
    for (std::size_t i = lo; i < hi; ++i)
      z[i] = static_cast<double>(logits(i - lo, 0, 1)) - static_cast<double>(logits(i - lo, 0, 0));
  }
  return z;
}

template <class B, class T = typename B::accum_type>
std::vector<double> met_logits(const model::BasicSequenceClassifier<B>& model,
                               std::span<const LabelledSequence> examples, std::size_t batch_size = 256) {
  std::vector<const std::vector<std::int32_t>*> seqs;
  seqs.reserve(examples.size());
  for (const auto& e : examples)
    seqs.push_back(&e.ids);
  return met_logits(model, std::span<const std::vector<std::int32_t>* const>(seqs), batch_size);
}

// P(MET) = sigmoid(z / temperature) for each logit.
inline std::vector<double> met_probabilities(std::span<const double> logits, double temperature = 1.0) {
  return apply_temperature(logits, temperature);
}

template <class B, class T = typename B::accum_type>
ClassifierTrainResult train_classifier(model::BasicSequenceClassifier<B>& model,
                                       std::span<const LabelledSequence> train,
                                       std::span<const LabelledSequence> validation,
                                       const ClassifierTrainConfig& cfg = {},
                                       const ProgressFn& progress = {}) {
  RLXF_REQUIRE(model.classes() == 2, "train_classifier: the classifier has ", model.classes(),
               " classes, expected 2 (Non-MET, MET)");
  std::vector<std::uint8_t> labels(train.size());
  for (std::size_t i = 0; i < train.size(); ++i) {
    RLXF_REQUIRE(train[i].label <= 1, "train_classifier: example ", i, " has label ",
                 int(train[i].label), ", expected 0 or 1");
    labels[i] = train[i].label;
  }
  const std::array<double, 2> weights =
      cfg.balance_classes ? balanced_class_weights(labels) : std::array<double, 2>{1.0, 1.0};

  const auto step = [&](std::span<const std::size_t> batch) {
    std::vector<const std::vector<std::int32_t>*> seqs;
    std::vector<std::uint8_t> y;
    for (std::size_t i : batch) {
      seqs.push_back(&train[i].ids);
      y.push_back(train[i].label);
    }
    const TokenBatch b = pad_batch(std::span<const std::vector<std::int32_t>* const>(seqs));
    typename model::BasicSequenceClassifier<B>::Cache cache;
    const auto out = model.forward(b.ids, nullptr, &b.mask, cache);
    const auto& logits = nn::accum_values<B>(out);
    auto dlogits = zeros<T, 3>({batch.size(), 1, 2});
    const double loss = weighted_cross_entropy<T>(
        std::span<const T>(logits.data(), logits.size()), y, weights,
        std::span<T>(dlogits.data(), dlogits.size()), batch.size());
    model.backward(nn::activation_from_host(model.backend().get(), dlogits), cache);
    return loss;
  };
  std::vector<std::uint8_t> val_labels;
  for (std::size_t i = 0; i < validation.size(); ++i) {
    RLXF_REQUIRE(validation[i].label <= 1, "train_classifier: validation example ", i, " has label ",
                 int(validation[i].label), ", expected 0 or 1");
    val_labels.push_back(validation[i].label);
  }
  const auto validate = [&]() -> std::pair<double, double> {
    const std::vector<double> z = met_logits(model, validation);
    double nll = 0;
    std::size_t correct = 0;
    for (std::size_t i = 0; i < z.size(); ++i) {
      // -log sigmoid(+-z), stably
      const double s = val_labels[i] ? -z[i] : z[i];
      nll += s > 0 ? s + std::log1p(std::exp(-s)) : std::log1p(std::exp(s));
      correct += (z[i] > 0) == (val_labels[i] == 1);
    }
    const auto n = static_cast<double>(z.size());
    return {nll / n, static_cast<double>(correct) / n};
  };

  ClassifierTrainResult result;
  result.report = run_training(model.parameters(), train.size(), cfg.train, step,
                               validation.empty() ? std::function<std::pair<double, double>()>{}
                                                  : std::function<std::pair<double, double>()>(validate),
                               progress);
  if (cfg.fit_temperature && !validation.empty())
    result.temperature = fit_temperature(met_logits(model, validation), val_labels);
  return result;
}

}  // namespace rlxf::reward
