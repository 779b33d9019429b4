#pragma once
// RLXF's reward model: a tokenizer and a MET / Non-MET sequence classifier, scoring a policy's
// answer (a condition description) to the paper's prompt by the probability that the condition
// would be met. Models the RewardModel concept.
//
//   reward::MonaRewardModel rm(std::move(bpe), std::move(classifier), {.temperature = 1.3});
//   std::vector<double> r = rm.score(prompts, responses);   // P(MET) of each answer
//   rm.save("run/reward_model");  auto again = reward::MonaRewardModel::load("run/reward_model");
//
// BasicMonaRewardModel<B> holds its classifier on backend B (MonaRewardModel: the CPU's, in
// float); the tokenizer and the scores stay on the host. Its files are the same whichever
// backend wrote them.
//
// The classifier reads classifier_text(context, answer) (data/mona.hpp), the context parsed back
// from the prompt, as [CLS] tokens [SEP], truncated to max_tokens. A directory holds
// tokenizer/ (vocab.json, merges.txt, special_tokens_map.json), classifier/ (config.json,
// model.safetensors) and reward.json (max_tokens, temperature, output).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/data/mona.hpp"
#include "rlxf/io/json.hpp"
#include "rlxf/io/safetensors.hpp"
#include "rlxf/model/checkpoint.hpp"
#include "rlxf/model/hf_config.hpp"
#include "rlxf/model/sequence_classifier.hpp"
#include "rlxf/nn/backend.hpp"
#include "rlxf/reward/classifier_training.hpp"
#include "rlxf/tokenize/bpe.hpp"

namespace rlxf::reward {

enum class RewardOutput {
  probability,  // P(MET) = sigmoid(z / T), in (0, 1): the paper's reward (the default)
  logit,        // z / T, the calibrated MET logit (TRL's sentiment example uses a raw logit)
};

struct RewardSettings {
  std::size_t max_tokens = 128;  // [CLS] and [SEP] included
  double temperature = 1.0;      // from temperature scaling on the validation set
  RewardOutput output = RewardOutput::probability;
};

template <class B>
class BasicMonaRewardModel {
 public:
  using Classifier = model::BasicSequenceClassifier<B>;

  BasicMonaRewardModel(tokenize::Bpe tokenizer, Classifier classifier, RewardSettings settings = {})
      : tokenizer_(std::move(tokenizer)), classifier_(std::move(classifier)), settings_(settings) {
    RLXF_REQUIRE(tokenizer_.cls() && tokenizer_.sep(),
                 "MonaRewardModel: the tokenizer needs CLS and SEP special tokens");
    RLXF_REQUIRE(classifier_.classes() == 2, "MonaRewardModel: the classifier has ",
                 classifier_.classes(), " classes, expected 2 (Non-MET, MET)");
    RLXF_REQUIRE(tokenizer_.vocab_size() <= classifier_.encoder.config().vocab_size,
                 "MonaRewardModel: the tokenizer has ", tokenizer_.vocab_size(),
                 " tokens but the classifier's vocabulary is ", classifier_.encoder.config().vocab_size);
    RLXF_REQUIRE(settings_.max_tokens >= 3 &&
                     settings_.max_tokens <= classifier_.encoder.config().max_positions,
                 "RewardSettings.max_tokens must be in [3, ", classifier_.encoder.config().max_positions,
                 "] (the classifier's positions), got ", settings_.max_tokens);
    RLXF_REQUIRE(std::isfinite(settings_.temperature) && settings_.temperature > 0,
                 "RewardSettings.temperature must be > 0, got ", settings_.temperature);
  }

  // [CLS] tokens [SEP] of a classifier text, truncated to max_tokens.
  std::vector<std::int32_t> encode(std::string_view text) const {
    std::vector<std::int32_t> ids{*tokenizer_.cls()};
    const std::vector<std::int32_t> body = tokenizer_.encode(text);
    const std::size_t keep = std::min(body.size(), settings_.max_tokens - 2);
    ids.insert(ids.end(), body.begin(), body.begin() + static_cast<std::ptrdiff_t>(keep));
    ids.push_back(*tokenizer_.sep());
    return ids;
  }
  std::vector<std::int32_t> encode(const data::ConditionContext& context, std::string_view answer) const {
    return encode(data::classifier_text(context, answer));
  }

  // One reward per (prompt, response): the prompt must be the paper's template
  // (data::policy_prompt), which names the country, arrangement type and economic descriptor.
  std::vector<double> score(std::span<const std::string> prompts,
                            std::span<const std::string> responses) const {
    RLXF_REQUIRE(prompts.size() == responses.size(), "MonaRewardModel::score: ", prompts.size(),
                 " prompts but ", responses.size(), " responses");
    std::vector<std::vector<std::int32_t>> seqs;
    seqs.reserve(prompts.size());
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const auto context = data::parse_policy_prompt(prompts[i]);
      if (!context)
        fail("MonaRewardModel::score: prompt ", i, " is not the MONA policy prompt (\"",
             prompts[i].substr(0, 80), "...\")");
      seqs.push_back(encode(*context, responses[i]));
    }
    return score_sequences(seqs);
  }

  // Rewards of encoded sequences (from encode()).
  std::vector<double> score_sequences(std::span<const std::vector<std::int32_t>> seqs) const {
    std::vector<const std::vector<std::int32_t>*> ptrs;
    ptrs.reserve(seqs.size());
    for (const auto& s : seqs)
      ptrs.push_back(&s);
    std::vector<double> z = met_logits(classifier_, std::span<const std::vector<std::int32_t>* const>(ptrs));
    for (double& v : z)
      v = settings_.output == RewardOutput::probability
              ? 1.0 / (1.0 + std::exp(-v / settings_.temperature))
              : v / settings_.temperature;
    return z;
  }

  const tokenize::Bpe& tokenizer() const { return tokenizer_; }
  const Classifier& classifier() const { return classifier_; }
  Classifier& classifier() { return classifier_; }
  const RewardSettings& settings() const { return settings_; }
  void set_temperature(double t) {
    RLXF_REQUIRE(std::isfinite(t) && t > 0, "temperature must be > 0, got ", t);
    settings_.temperature = t;
  }

  void save(const std::filesystem::path& dir) {
    std::filesystem::create_directories(dir);
    tokenizer_.save(dir / "tokenizer");
    model::save_classifier(dir / "classifier", classifier_);
    const nlohmann::json j{{"max_tokens", settings_.max_tokens},
                           {"temperature", settings_.temperature},
                           {"output", settings_.output == RewardOutput::probability ? "probability" : "logit"}};
    const std::string text = j.dump(2) + "\n";
    io::AtomicFile file(dir / "reward.json");
    file.append(std::as_bytes(std::span(text)));
    file.commit();
  }

  // The classifier is built on `backend` (needed when B has state, as the CUDA backends do).
  static BasicMonaRewardModel load(const std::filesystem::path& dir, nn::BackendRef<B> backend = {}) {
    return with_context("loading reward model " + dir.string(), [&] {
      const nlohmann::json j = io::read_json(dir / "reward.json");
      RewardSettings s;
      with_context("reward.json", [&] {
        if (!j.is_object()) fail("expected a JSON object");
        for (const auto& [key, value] : j.items())
          if (key != "max_tokens" && key != "temperature" && key != "output")
            fail("unknown key '", key, "' (expected max_tokens, temperature, output)");
        // A value of the wrong type or out of the type's range is an rlxf::Error naming the key;
        // the constructor checks the ranges.
        s.max_tokens = io::json_get<std::size_t>(j, "max_tokens", s.max_tokens);
        s.temperature = io::json_get<double>(j, "temperature", s.temperature);
        const auto output = io::json_get<std::string>(j, "output", "probability");
        if (output != "probability" && output != "logit")
          fail("output is '", output, "', expected 'probability' or 'logit'");
        s.output = output == "logit" ? RewardOutput::logit : RewardOutput::probability;
      });
      return BasicMonaRewardModel(tokenize::Bpe::load(std::filesystem::path(dir / "tokenizer")),
                                  model::load_classifier<B>(dir / "classifier", backend), s);
    });
  }

 private:
  tokenize::Bpe tokenizer_;
  Classifier classifier_;
  RewardSettings settings_;
};

using MonaRewardModel = BasicMonaRewardModel<nn::backend_for_t<float>>;

static_assert(RewardModel<MonaRewardModel>);

}  // namespace rlxf::reward
