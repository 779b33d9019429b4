#pragma once
// RLXF step 1 in one call: a MonaRewardModel trained from scratch on labelled MONA rows (a
// BERT-style MET / Non-MET classifier over classifier_text, temperature fitted on validation).
//
//   reward::MonaRewardModel rm = reward::train_mona_reward_model(table, train_rows, val_rows, bpe, {});
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "rlxf/core/rng.hpp"
#include "rlxf/data/mona.hpp"
#include "rlxf/model/encoder.hpp"
#include "rlxf/model/sequence_classifier.hpp"
#include "rlxf/reward/classifier_training.hpp"
#include "rlxf/reward/mona_reward_model.hpp"
#include "rlxf/tokenize/bpe.hpp"

namespace rlxf::reward {

struct MonaRewardTrainConfig {
  std::size_t d_model = 64, layers = 2, heads = 4;  // the BERT-style encoder (mean pooling)
  std::size_t max_tokens = 128;
  ClassifierTrainConfig classifier{.train = {.epochs = 4, .lr = 2e-3}};
  std::uint64_t seed = 0;  // initialisation (batch order: classifier.train.seed)

  model::EncoderConfig encoder(std::size_t vocab_size) const {
    return {.vocab_size = vocab_size,
            .max_positions = max_tokens,
            .type_vocab_size = 1,
            .d_model = d_model,
            .n_layers = layers,
            .n_heads = heads,
            .d_hidden = 4 * d_model,
            .pooling = model::Pooling::mean};
  }
};

// Labelled sequences of the given rows (MET = 1), as the reward model encodes them.
template <class B>
std::vector<LabelledSequence> mona_examples(const BasicMonaRewardModel<B>& rm, const data::MonaTable& table,
                                            std::span<const std::size_t> rows) {
  std::vector<LabelledSequence> out;
  out.reserve(rows.size());
  for (std::size_t i : rows) {
    RLXF_REQUIRE(table.labels.at(i) != data::Label::none, "mona_examples: row ", i, " has no label");
    out.push_back({rm.encode(data::classifier_text(table.records[i])),
                   static_cast<std::uint8_t>(table.labels[i] == data::Label::met)});
  }
  return out;
}

// The classifier is built and trained on `backend` (the CPU's, in float, by default).
template <class B = nn::backend_for_t<float>>
std::pair<BasicMonaRewardModel<B>, ClassifierTrainResult> train_mona_reward_model(
    const data::MonaTable& table, std::span<const std::size_t> train_rows, std::span<const std::size_t> val_rows,
    tokenize::Bpe tokenizer, const MonaRewardTrainConfig& cfg = {}, const ProgressFn& progress = {},
    nn::BackendRef<B> backend = {}) {
  const model::EncoderConfig enc = cfg.encoder(tokenizer.vocab_size());
  Rng init(cfg.seed, 1);
  BasicMonaRewardModel<B> rm(std::move(tokenizer), model::BasicSequenceClassifier<B>(enc, 2, init, backend),
                             {.max_tokens = cfg.max_tokens});
  const auto train = mona_examples(rm, table, train_rows), val = mona_examples(rm, table, val_rows);
  ClassifierTrainResult fit = train_classifier(rm.classifier(), train, val, cfg.classifier, progress);
  rm.set_temperature(fit.temperature);
  return {std::move(rm), std::move(fit)};
}

}  // namespace rlxf::reward
