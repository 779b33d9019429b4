// rlxf::eval alignment: evaluate_policy on a tiny policy and a toy reward (scores, KL against
// itself and against another reference, chunking), summarize_alignment on hand-made
// evaluations (its tests against eval::welch_t_test, the over-optimisation flag), and
// alignment_markdown.
// GCC 12 reports a false -Wrestrict in std::string's operator+ inlined from
// eval::format_interval (report.hpp's comments note the same false positive); the location
// it names is in <string>, so only a TU-wide setting silences it.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "error_of.hpp"
#include "rlxf/eval/alignment.hpp"
#include "rlxf/eval/statistics.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/tokenize/bpe.hpp"

using namespace rlxf;
using eval::PolicyEvaluation;
using rlxf::test::error_of;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Reward: the fraction of the answer's bytes that are 'a' (0 when empty).
struct LetterAReward {
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string> responses) const {
    RLXF_REQUIRE(prompts.size() == responses.size(), "LetterAReward: ", prompts.size(), " prompts, ",
                 responses.size(), " responses");
    std::vector<double> out;
    for (const std::string& r : responses) {
      std::size_t a = 0;
      for (char c : r) a += c == 'a' ? 1 : 0;
      out.push_back(r.empty() ? 0.0 : static_cast<double>(a) / static_cast<double>(r.size()));
    }
    return out;
  }
};
static_assert(RewardModel<LetterAReward>);

tokenize::Bpe tiny_bpe() {
  const std::vector<std::string> corpus = {"the cat sat on the mat", "a dog ate the bone", "the bird sang a song",
                                           "cats and dogs and birds", "a banana and a papaya", "aaa aa a"};
  return tokenize::Bpe::train(corpus, {.vocab_size = 280});
}

model::TextPolicy tiny_policy(std::uint64_t seed) {
  tokenize::Bpe bpe = tiny_bpe();
  Rng rng(seed);
  const model::DecoderConfig cfg{.vocab_size = bpe.vocab_size(), .max_positions = 32, .d_model = 16,
                                 .n_layers = 1, .n_heads = 2, .d_hidden = 32};
  return model::TextPolicy(std::move(bpe), model::Policy<float>(cfg, rng));
}

const std::vector<std::string> prompts = {"the cat", "a dog", "the bird", "cats and", "the mat", "a bone", "the song"};
const model::GenerationConfig gen8{.max_new_tokens = 8, .temperature = 0.9};

// n deterministic values spread around `centre` (a fixed zig-zag, spread +-0.1).
std::vector<double> around(double centre, std::size_t n, std::size_t phase = 0) {
  std::vector<double> out;
  for (std::size_t i = 0; i < n; ++i)
    out.push_back(centre + 0.1 * (static_cast<double>((i * 7 + phase) % 11) / 10.0 - 0.5));
  return out;
}

PolicyEvaluation hand_made(std::string name, std::vector<double> rewards, std::vector<double> oracle = {}) {
  PolicyEvaluation e;
  e.name = std::move(name);
  for (std::size_t i = 0; i < rewards.size(); ++i) {
    e.answers.push_back(e.name + " answer " + std::to_string(i));
    e.ended.push_back(i % 2 == 0);
  }
  e.rewards = std::move(rewards);
  e.oracle = std::move(oracle);
  return e;
}

}  // namespace

TEST_CASE("evaluate_policy: rewards are the RM's scores of its answers, KL 0 against itself, k1 sums otherwise") {
  model::TextPolicy policy = tiny_policy(1);
  const LetterAReward rm;
  // Chunks of 3 over 7 prompts, the policy as its own reference.
  const PolicyEvaluation self = eval::evaluate_policy("SFT", policy, rm, prompts, gen8, Rng(7), &policy.policy(), 3);
  CHECK(self.name == "SFT");
  REQUIRE(self.answers.size() == prompts.size());
  CHECK(self.rewards.size() == prompts.size());
  CHECK(self.ended.size() == prompts.size());
  CHECK(self.oracle.empty());
  CHECK(self.rewards == rm.score(prompts, self.answers));
  REQUIRE(self.kl.size() == prompts.size());
  for (double k : self.kl) CHECK(k == 0.0);

  // Without a reference: no KL; the same Rng gives the same answers.
  const PolicyEvaluation plain = eval::evaluate_policy("SFT", policy, rm, prompts, gen8, Rng(7), nullptr, 3);
  CHECK(plain.kl.empty());
  CHECK(plain.answers == self.answers);
  CHECK(plain.rewards == self.rewards);

  // One chunk: exactly TextPolicy::sample's answers; against another reference the KL is each
  // row's sum over answer tokens of log pi - log pi_ref at the sampling temperature.
  model::TextPolicy other = tiny_policy(2);
  const PolicyEvaluation e = eval::evaluate_policy("PPO", policy, rm, prompts, gen8, Rng(9), &other.policy());
  Rng rng(9);
  const model::Rollout r = policy.sample(prompts, gen8, rng);
  CHECK(e.answers == r.texts);
  CHECK(e.ended == r.ended);
  CHECK(e.rewards == rm.score(prompts, r.texts));
  typename model::Policy<float>::Cache pc, rc;
  const auto lp = policy.policy().forward(r.batch, gen8.temperature, false, pc);
  const auto lr = other.policy().forward(r.batch, gen8.temperature, false, rc);
  REQUIRE(e.kl.size() == prompts.size());
  bool any_nonzero = false;
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    double want = 0;
    for (std::size_t i = 0; i < r.batch.response_width(); ++i)
      if (r.batch.mask(b, r.batch.prompt_width + i))
        want += static_cast<double>(lp.logprobs(b, i)) - static_cast<double>(lr.logprobs(b, i));
    CHECK(e.kl[b] == doctest::Approx(want).epsilon(1e-12));
    any_nonzero = any_nonzero || e.kl[b] != 0.0;
  }
  CHECK(any_nonzero);
  const std::vector<std::string> none;
  CHECK(contains(error_of([&] { eval::evaluate_policy("x", policy, rm, none, gen8, Rng(1)); }), "no prompts"));
}

TEST_CASE("summarize_alignment: the tests are eval's, over-optimisation needs a reward gain and an oracle loss") {
  const std::size_t n = 30;
  const auto tuned_r = around(0.8, n), base_r = around(0.2, n, 3), random_r = around(0.1, n, 5);
  const auto oracle_down = around(0.3, n, 1), oracle_up = around(0.9, n, 2), oracle_base = around(0.6, n, 4);
  const std::vector<PolicyEvaluation> e = {hand_made("PPO", tuned_r, oracle_down), hand_made("SFT", base_r, oracle_base),
                                           hand_made("random", random_r)};
  const eval::AlignmentRoles roles{.tuned = 0, .base = 1, .random = 2};
  const eval::AlignmentSummary s = eval::summarize_alignment(e, roles);
  const eval::TTest want = eval::welch_t_test(tuned_r, base_r, eval::Alternative::greater);
  CHECK(s.reward_vs_base.p_value == want.p_value);
  CHECK(s.reward_vs_base.statistic == want.statistic);
  CHECK(s.reward_vs_base.mean_difference == doctest::Approx(0.6).epsilon(0.05));
  CHECK(s.reward_vs_base.p_value < 1e-10);
  CHECK(s.reward_vs_random.p_value == eval::welch_t_test(tuned_r, random_r, eval::Alternative::greater).p_value);
  CHECK(s.oracle_vs_base.p_value == eval::welch_t_test(oracle_down, oracle_base, eval::Alternative::two_sided).p_value);
  CHECK(s.reward_gain.lower > 0.5);
  CHECK(s.oracle_gain.upper < 0);
  CHECK(s.win_rate.rate == 1.0);
  CHECK(s.over_optimisation);

  // The oracle rises with the reward: no flag.
  const std::vector<PolicyEvaluation> good = {hand_made("PPO", tuned_r, oracle_up), hand_made("SFT", base_r, oracle_base)};
  const auto sg = eval::summarize_alignment(good, {});
  CHECK(sg.oracle_gain.lower > 0);
  CHECK(!sg.over_optimisation);
  // The oracle falls but the reward did not rise (tuned and base swapped): no flag.
  const std::vector<PolicyEvaluation> flat = {hand_made("PPO", base_r, oracle_down), hand_made("SFT", base_r, oracle_base)};
  const auto sf = eval::summarize_alignment(flat, {});
  CHECK(sf.reward_vs_base.p_value > 0.01);
  CHECK(!sf.over_optimisation);
  // No oracle: no flag.
  const std::vector<PolicyEvaluation> blind = {hand_made("PPO", tuned_r), hand_made("SFT", base_r)};
  CHECK(!eval::summarize_alignment(blind, {}).over_optimisation);
  CHECK(contains(error_of([&] { eval::summarize_alignment(blind, {.tuned = 0, .base = 2}); }), "out of range"));
}

TEST_CASE("alignment_markdown: a table of the policies, the tests and sample answers") {
  const std::size_t n = 12;
  const std::vector<std::string> ps = [&] {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < n; ++i) out.push_back("prompt " + std::to_string(i));
    return out;
  }();
  std::vector<PolicyEvaluation> e = {hand_made("PPO-tuned", around(0.8, n), around(0.3, n, 1)),
                                     hand_made("SFT-base", around(0.2, n, 3), around(0.6, n, 4)),
                                     hand_made("random-policy", around(0.1, n, 5))};
  e[0].kl = around(2.0, n);
  const std::string md = eval::alignment_markdown(e, ps, {.tuned = 0, .base = 1, .random = 2, .sample_rows = 4});
  INFO(md);
  for (const char* name : {"PPO-tuned", "SFT-base", "random-policy"}) CHECK(contains(md, name));
  CHECK(contains(md, "| policy"));
  CHECK(contains(md, "mean reward [95% CI]"));
  CHECK(contains(md, "---"));
  CHECK(contains(md, "Welch"));
  CHECK(contains(md, "Reward over-optimisation"));
  CHECK(contains(md, "prompt 3"));
  CHECK(!contains(md, "prompt 4"));  // sample_rows 4
  CHECK(contains(md, "PPO-tuned answer 0"));
  CHECK(contains(md, "SFT-base answer 3"));
  // A table row per policy: the random policy has no oracle and no KL.
  std::size_t rows = 0;
  for (std::size_t pos = 0; (pos = md.find("\n| ", pos)) != std::string::npos; ++pos) ++rows;
  CHECK(md.starts_with("| policy |"));
  CHECK(rows == 3 + 1 + 4);  // after the first header: 3 policies, the samples' header, 4 samples

  // Evaluations with fewer answers than prompts are refused (not read out of bounds).
  std::vector<PolicyEvaluation> short_e = e;
  short_e[1].answers.resize(2);
  CHECK(contains(error_of([&] { (void)eval::alignment_markdown(short_e, ps, {.tuned = 0, .base = 1, .sample_rows = 4}); }),
                 "'SFT-base' has 2 answers and 12 rewards for 4 sample rows"));
}
