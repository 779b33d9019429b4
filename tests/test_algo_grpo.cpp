#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rlxf/algo/grpo.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/tokenize/bpe.hpp"

using namespace rlxf;

namespace {

// Toy reward models. LetterReward: the fraction of the answer's bytes that are `letter` (0 for
// an empty answer). LengthReward: the answer's length in bytes / 8 (many distinct values, so
// every group has a spread).
struct LetterReward {
  char letter = 'a';
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string> answers) const {
    RLXF_REQUIRE(prompts.size() == answers.size(), "LetterReward: sizes differ");
    std::vector<double> out;
    for (const std::string& a : answers)
      out.push_back(a.empty() ? 0.0
                              : static_cast<double>(std::count(a.begin(), a.end(), letter)) /
                                    static_cast<double>(a.size()));
    return out;
  }
};
struct LengthReward {
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string> answers) const {
    RLXF_REQUIRE(prompts.size() == answers.size(), "LengthReward: sizes differ");
    std::vector<double> out;
    for (const std::string& a : answers) out.push_back(static_cast<double>(a.size()) / 8.0);
    return out;
  }
};
static_assert(RewardModel<LetterReward> && RewardModel<LengthReward>);
static_assert(Algorithm<algo::Grpo, model::TextPolicy, LetterReward>);

// A tiny byte-level BPE (default special tokens: EOS, PAD, SEP, CLS) and a GPT-2-family policy.
model::TextPolicy tiny_policy(std::uint64_t seed) {
  tokenize::Bpe bpe = tokenize::Bpe::train({"aaaa bbbb aaaa", "abab baba", "a cat sat", "bad cab dab", "aa bb aa"},
                                           {.vocab_size = 256 + 8 + 4});
  const std::size_t vocab = bpe.vocab_size();
  model::DecoderConfig cfg{.vocab_size = vocab, .max_positions = 32, .d_model = 16, .n_layers = 1, .n_heads = 2,
                           .d_hidden = 32};
  cfg.init_std = 0.1;
  Rng rng(seed);
  return model::TextPolicy(std::move(bpe), model::Policy<float>(cfg, rng));
}

const std::vector<std::string> prompts = {"a cat", "bad", "ab ab", "sat"};

double metric(const algo::StepMetrics& ms, std::string_view name) {
  for (const auto& [k, v] : ms)
    if (k == name) return v;
  FAIL("metric ", name, " missing");
  return 0;
}

double mean_reward(const model::TextPolicy& policy, const LetterReward& rm, double temperature) {
  std::vector<std::string> ps;
  for (std::size_t i = 0; i < 64; ++i) ps.push_back(prompts[i % prompts.size()]);
  Rng rng(12345);
  const model::Rollout r = policy.sample(ps, {.max_new_tokens = 6, .temperature = temperature}, rng);
  const std::vector<double> s = rm.score(ps, r.texts);
  double m = 0;
  for (double x : s) m += x / static_cast<double>(s.size());
  return m;
}

std::vector<float> flat_parameters(model::TextPolicy& policy) {
  std::vector<float> out;
  for (const auto& p : policy.policy().parameters(true))
    out.insert(out.end(), p.param->value.data(), p.param->value.data() + p.param->size());
  return out;
}

void copy_parameters(model::TextPolicy& from, model::TextPolicy& to) {
  const auto src = from.policy().parameters(true), dst = to.policy().parameters(true);
  REQUIRE(src.size() == dst.size());
  for (std::size_t i = 0; i < src.size(); ++i) dst[i].param->value = src[i].param->value;
}

}  // namespace

TEST_CASE("Grpo: the advantages of a step are the group normalisation of the scores it observed") {
  model::TextPolicy policy = tiny_policy(1);
  algo::Grpo grpo(policy, {.steps = 10, .group_size = 4, .generation = {.max_new_tokens = 6, .temperature = 1.0},
                           .microbatch_size = 5, .lr = 1e-3});
  const LengthReward rm;
  Rng rng(7);
  for (int s = 0; s < 2; ++s) {
    const algo::StepMetrics ms = grpo.step(policy, rm, prompts, rng);
    const algo::GrpoStepRecord& rec = grpo.last_step();
    REQUIRE(rec.scores.size() == prompts.size() * 4);
    REQUIRE(rec.advantages.size() == rec.scores.size());
    CHECK(rm.score(rec.prompts, rec.texts) == rec.scores);  // the scores are the RM's on the answers
    double reward = 0, reward_std = 0, spread = 0;
    for (std::size_t g = 0; g < prompts.size(); ++g) {
      double mean = 0, ss = 0;
      for (std::size_t i = 0; i < 4; ++i) {
        CHECK(rec.prompts[g * 4 + i] == prompts[g]);
        mean += rec.scores[g * 4 + i] / 4;
      }
      for (std::size_t i = 0; i < 4; ++i) ss += (rec.scores[g * 4 + i] - mean) * (rec.scores[g * 4 + i] - mean);
      const double sd = std::sqrt(ss / 3);  // Bessel
      for (std::size_t i = 0; i < 4; ++i) {
        const double expected = (rec.scores[g * 4 + i] - mean) / (sd + 1e-4);
        CHECK(rec.advantages[g * 4 + i] == doctest::Approx(expected).epsilon(1e-6));
        spread += std::abs(expected);
      }
      reward += mean / static_cast<double>(prompts.size());
      reward_std += sd / static_cast<double>(prompts.size());
    }
    CHECK(spread > 0);  // the check is not vacuous
    CHECK(metric(ms, "reward") == doctest::Approx(reward));
    CHECK(metric(ms, "objective/scores") == doctest::Approx(reward));
    CHECK(metric(ms, "reward_std") == doctest::Approx(reward_std));
  }
}

TEST_CASE("Grpo: at the first step (policy == reference) the KL is 0 and the ratio 1") {
  model::TextPolicy policy = tiny_policy(2);
  algo::Grpo grpo(policy, {.steps = 10, .group_size = 4, .generation = {.max_new_tokens = 6, .temperature = 1.0},
                           .microbatch_size = 16, .lr = 1e-3});
  Rng rng(3);
  const algo::StepMetrics ms = grpo.step(policy, LengthReward{}, prompts, rng);
  CHECK(std::abs(metric(ms, "kl")) < 1e-9);
  CHECK(metric(ms, "ratio") == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(metric(ms, "clip_ratio") == 0.0);
  CHECK(metric(ms, "lr") == doctest::Approx(1e-3));
  CHECK(metric(ms, "completions/mean_length") > 0);
  CHECK(metric(ms, "completions/mean_length") <= 6);
  CHECK(std::isfinite(metric(ms, "loss")));
  CHECK(metric(ms, "entropy") > 0);
  // After an update the policy has moved: the next batch has a positive KL.
  const algo::StepMetrics ms2 = grpo.step(policy, LengthReward{}, prompts, rng);
  CHECK(metric(ms2, "kl") > 0);
  CHECK(metric(ms2, "lr") == doctest::Approx(0.9e-3));
}

TEST_CASE("Grpo: a few steps raise the toy reward") {
  model::TextPolicy policy = tiny_policy(3);
  const LetterReward rm{'a'};
  const double before = mean_reward(policy, rm, 1.0);
  algo::Grpo grpo(policy, {.steps = 30, .group_size = 8, .generation = {.max_new_tokens = 6, .temperature = 1.0},
                           .microbatch_size = 32, .lr = 2e-2});
  Rng rng(11);
  for (int s = 0; s < 20; ++s) grpo.step(policy, rm, prompts, rng);
  const double after = mean_reward(policy, rm, 1.0);
  MESSAGE("GRPO toy reward: before ", before, ", after ", after);
  CHECK(after > before + 0.25);  // observed: 0.03 -> 0.5
}

TEST_CASE("Grpo: restore(state()) into a fresh Grpo continues bit for bit") {
  const model::TextPolicy initial = tiny_policy(4);
  const algo::GrpoConfig cfg{.steps = 10, .group_size = 2, .generation = {.max_new_tokens = 5, .temperature = 1.0},
                             .iterations_per_step = 2, .minibatch_size = 4, .microbatch_size = 3, .lr = 5e-3};
  const LengthReward rm;
  model::TextPolicy a = initial;
  algo::Grpo grpo_a(a, cfg);
  Rng rng(5);
  for (int s = 0; s < 2; ++s) grpo_a.step(a, rm, prompts, rng);

  // Built the same way as a resumed run does: from the initial policy (the reference), then the
  // trained weights and the algorithm state are loaded.
  model::TextPolicy b = initial;
  algo::Grpo grpo_b(b, cfg);
  copy_parameters(a, b);
  const std::filesystem::path file = std::filesystem::temp_directory_path() / "rlxf_test_grpo_state.safetensors";
  grpo_a.state().save(file);
  grpo_b.restore(algo::AlgorithmState::load(file));
  std::filesystem::remove(file);
  CHECK(grpo_b.steps_done() == 2);

  Rng rng_b = rng;
  const algo::StepMetrics ma = grpo_a.step(a, rm, prompts, rng);
  const algo::StepMetrics mb = grpo_b.step(b, rm, prompts, rng_b);
  CHECK(flat_parameters(a) == flat_parameters(b));
  CHECK(ma == mb);
  model::TextPolicy fresh = initial;
  CHECK(flat_parameters(a) != flat_parameters(fresh));  // training moved the weights
}

TEST_CASE("Grpo: bad configurations and a foreign policy are rejected") {
  model::TextPolicy policy = tiny_policy(5);
  CHECK_THROWS_AS(algo::Grpo(policy, {.group_size = 1}), Error);
  CHECK_THROWS_AS(algo::Grpo(policy, {.generation = {.top_k = 5}}), Error);
  CHECK_THROWS_AS(algo::Grpo(policy, {.iterations_per_step = 0}), Error);
  algo::Grpo grpo(policy, {});
  model::TextPolicy other = policy;
  Rng rng(1);
  CHECK_THROWS_AS(grpo.step(other, LengthReward{}, prompts, rng), Error);
}
