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

#include "rlxf/algo/rloo.hpp"
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
static_assert(Algorithm<algo::Rloo, model::TextPolicy, LetterReward>);

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

TEST_CASE("Rloo: the advantages of a step are the leave-one-out values of the rewards it observed") {
  model::TextPolicy policy = tiny_policy(1);
  const double beta = 0.05;
  algo::Rloo rloo(policy, {.steps = 10, .k = 3, .beta = beta, .generation = {.max_new_tokens = 6, .temperature = 0.7},
                           .epochs = 2, .minibatch_size = 5, .microbatch_size = 4, .lr = 1e-2});
  const LengthReward rm;
  Rng rng(7);
  for (int s = 0; s < 3; ++s) {
    CAPTURE(s);
    const algo::StepMetrics ms = rloo.step(policy, rm, prompts, rng);
    const algo::RlooStepRecord& rec = rloo.last_step();
    const std::size_t B = prompts.size() * 3;
    REQUIRE(rec.scores.size() == B);
    REQUIRE(rec.kl.size() == B);
    REQUIRE(rec.rewards.size() == B);
    REQUIRE(rec.advantages.size() == B);
    CHECK(rm.score(rec.prompts, rec.texts) == rec.scores);  // the scores are the RM's on the answers
    double score = 0, kl = 0, rlhf = 0, spread = 0, kl_abs = 0;
    for (std::size_t i = 0; i < B; ++i) {
      CHECK(rec.prompts[i] == prompts[i / 3]);
      CHECK(rec.rewards[i] == doctest::Approx(rec.scores[i] - beta * rec.kl[i]).epsilon(1e-12));
      score += rec.scores[i] / static_cast<double>(B);
      kl += rec.kl[i] / static_cast<double>(B);
      rlhf += rec.rewards[i] / static_cast<double>(B);
      kl_abs += std::abs(rec.kl[i]);
    }
    for (std::size_t g = 0; g < prompts.size(); ++g)
      for (std::size_t i = 0; i < 3; ++i) {
        double others = 0;
        for (std::size_t j = 0; j < 3; ++j)
          if (j != i) others += rec.rewards[g * 3 + j];
        const double expected = rec.rewards[g * 3 + i] - others / 2;
        CHECK(rec.advantages[g * 3 + i] == doctest::Approx(expected).epsilon(1e-6));
        spread += std::abs(expected);
      }
    CHECK(spread > 0);  // the check is not vacuous
    if (s == 0)
      CHECK(kl_abs < 1e-9);  // policy == reference
    else
      CHECK(kl_abs > 0);     // the KL term is exercised
    CHECK(metric(ms, "objective/scores") == doctest::Approx(score));
    CHECK(metric(ms, "objective/kl") == doctest::Approx(kl));
    CHECK(metric(ms, "objective/rlhf_reward") == doctest::Approx(rlhf));
  }
}

TEST_CASE("Rloo: at the first step (policy == reference) the KL is 0 and the ratio 1") {
  model::TextPolicy policy = tiny_policy(2);
  algo::Rloo rloo(policy, {.steps = 10, .k = 4, .generation = {.max_new_tokens = 6, .temperature = 0.7},
                           .epochs = 1, .microbatch_size = 16, .lr = 1e-3});
  Rng rng(3);
  const algo::StepMetrics ms = rloo.step(policy, LengthReward{}, prompts, rng);
  CHECK(std::abs(metric(ms, "objective/kl")) < 1e-9);
  CHECK(metric(ms, "objective/rlhf_reward") == doctest::Approx(metric(ms, "objective/scores")));
  CHECK(metric(ms, "val/ratio") == doctest::Approx(1.0).epsilon(1e-6));
  CHECK(metric(ms, "policy/clipfrac_avg") == 0.0);
  CHECK(metric(ms, "policy/approxkl_avg") < 1e-9);
  CHECK(metric(ms, "lr") == doctest::Approx(1e-3));
  CHECK(metric(ms, "completions/mean_length") > 0);
  CHECK(metric(ms, "completions/mean_length") <= 6);
  CHECK(std::isfinite(metric(ms, "loss/policy_avg")));
  CHECK(metric(ms, "objective/entropy") > 0);
  const algo::StepMetrics ms2 = rloo.step(policy, LengthReward{}, prompts, rng);
  CHECK(metric(ms2, "lr") == doctest::Approx(0.9e-3));
}

TEST_CASE("Rloo: a few steps raise the toy reward") {
  model::TextPolicy policy = tiny_policy(3);
  const LetterReward rm{'a'};
  const double before = mean_reward(policy, rm, 1.0);
  algo::Rloo rloo(policy, {.steps = 40, .k = 4, .generation = {.max_new_tokens = 6, .temperature = 1.0},
                           .epochs = 2, .microbatch_size = 32, .lr = 1e-2});
  std::vector<std::string> ps;
  for (int r = 0; r < 2; ++r) ps.insert(ps.end(), prompts.begin(), prompts.end());
  Rng rng(11);
  for (int s = 0; s < 30; ++s) rloo.step(policy, rm, ps, rng);
  const double after = mean_reward(policy, rm, 1.0);
  MESSAGE("RLOO toy reward: before ", before, ", after ", after);
  CHECK(after > before + 0.25);  // observed: 0.03 -> 0.42
}

TEST_CASE("Rloo: restore(state()) into a fresh Rloo continues bit for bit") {
  const model::TextPolicy initial = tiny_policy(4);
  const algo::RlooConfig cfg{.steps = 10, .k = 2, .generation = {.max_new_tokens = 5, .temperature = 0.7},
                             .epochs = 2, .minibatch_size = 3, .microbatch_size = 2, .lr = 5e-3};
  const LengthReward rm;
  model::TextPolicy a = initial;
  algo::Rloo rloo_a(a, cfg);
  Rng rng(5);
  for (int s = 0; s < 2; ++s) rloo_a.step(a, rm, prompts, rng);

  // Built the same way as a resumed run does: from the initial policy (the reference), then the
  // trained weights and the algorithm state are loaded.
  model::TextPolicy b = initial;
  algo::Rloo rloo_b(b, cfg);
  copy_parameters(a, b);
  const std::filesystem::path file = std::filesystem::temp_directory_path() / "rlxf_test_rloo_state.safetensors";
  rloo_a.state().save(file);
  rloo_b.restore(algo::AlgorithmState::load(file));
  std::filesystem::remove(file);
  CHECK(rloo_b.steps_done() == 2);

  Rng rng_b = rng;
  const algo::StepMetrics ma = rloo_a.step(a, rm, prompts, rng);
  const algo::StepMetrics mb = rloo_b.step(b, rm, prompts, rng_b);
  CHECK(flat_parameters(a) == flat_parameters(b));
  CHECK(ma == mb);
  model::TextPolicy fresh = initial;
  CHECK(flat_parameters(a) != flat_parameters(fresh));  // training moved the weights
}

TEST_CASE("Rloo: bad configurations and a foreign policy are rejected") {
  model::TextPolicy policy = tiny_policy(5);
  CHECK_THROWS_AS(algo::Rloo(policy, {.k = 1}), Error);
  CHECK_THROWS_AS(algo::Rloo(policy, {.generation = {.top_p = 0.9}}), Error);
  CHECK_THROWS_AS(algo::Rloo(policy, {.epochs = 0}), Error);
  algo::Rloo rloo(policy, {});
  model::TextPolicy other = policy;
  Rng rng(1);
  CHECK_THROWS_AS(rloo.step(other, LengthReward{}, prompts, rng), Error);
}
