#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "error_of.hpp"
#include "rlxf/algo/rejection_sampling.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/core/threading.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/tokenize/bpe.hpp"

using namespace rlxf;
using algo::RejectionSampling;
using algo::RejectionSamplingConfig;

namespace {

// Reward: the fraction of the answer's bytes that are lowercase ASCII letters (0 when empty).
struct LetterReward {
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string> responses) const {
    RLXF_REQUIRE(prompts.size() == responses.size(), "LetterReward: ", prompts.size(), " prompts, ",
                 responses.size(), " responses");
    std::vector<double> out;
    for (const std::string& r : responses) {
      std::size_t letters = 0;
      for (char c : r) letters += (c >= 'a' && c <= 'z') ? 1 : 0;
      out.push_back(r.empty() ? 0.0 : static_cast<double>(letters) / static_cast<double>(r.size()));
    }
    return out;
  }
};
static_assert(RewardModel<LetterReward>);

tokenize::Bpe tiny_bpe() {
  const std::vector<std::string> corpus = {"the cat sat on the mat", "a dog ate the bone", "the bird sang a song",
                                           "cats and dogs and birds", "the mat and the bone"};
  return tokenize::Bpe::train(corpus, {.vocab_size = 290});
}

model::TextPolicy tiny_policy(std::uint64_t seed) {
  // Models this small gain nothing from threads, and on a shared machine every parallel region
  // can cost a time slice; results do not depend on the thread count.
  set_threads(1);
  tokenize::Bpe bpe = tiny_bpe();
  Rng rng(seed);
  const model::DecoderConfig cfg{.vocab_size = bpe.vocab_size(), .max_positions = 32, .d_model = 16,
                                 .n_layers = 1, .n_heads = 2, .d_hidden = 32};
  return model::TextPolicy(std::move(bpe), model::Policy<float>(cfg, rng));
}

const std::vector<std::string> prompts = {"the cat", "a dog", "the bird", "cats and",
                                          "the mat", "a bone", "the song", "dogs and"};

// Mean reward of 64 answers sampled at temperature 1 with a fixed seed.
double mean_reward(const model::TextPolicy& policy, std::size_t max_new_tokens) {
  Rng rng(12345);
  std::vector<std::string> ps;
  for (int t = 0; t < 8; ++t) ps.insert(ps.end(), prompts.begin(), prompts.end());
  const model::Rollout r = policy.sample(ps, {.max_new_tokens = max_new_tokens, .temperature = 1.0}, rng);
  double s = 0;
  for (double x : LetterReward{}.score(ps, r.texts)) s += x / static_cast<double>(ps.size());
  return s;
}

double metric(const algo::StepMetrics& m, const std::string& name) {
  for (const auto& [k, v] : m)
    if (k == name) return v;
  FAIL("no metric ", name);
  return 0;
}

// numpy.quantile(v, q) (linear).
double numpy_quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double h = static_cast<double>(v.size() - 1) * q;
  const auto lo = static_cast<std::size_t>(std::floor(h));
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (h - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

bool same_parameters(model::TextPolicy& a, model::TextPolicy& b) {
  auto pa = a.policy().parameters(true), pb = b.policy().parameters(true);
  bool same = pa.size() == pb.size();
  for (std::size_t k = 0; same && k < pa.size(); ++k) same = pa[k].param->value == pb[k].param->value;
  return same;
}

void copy_parameters(model::TextPolicy& from, model::TextPolicy& to) {
  auto pf = from.policy().parameters(true), pt = to.policy().parameters(true);
  for (std::size_t k = 0; k < pf.size(); ++k) pt[k].param->value = pf[k].param->value;
}

}  // namespace

TEST_CASE("RejectionSampling: keeps exactly the best-scoring answer of each prompt") {
  static_assert(Algorithm<RejectionSampling, model::TextPolicy, LetterReward>);
  model::TextPolicy policy = tiny_policy(1);
  RejectionSampling rs(policy, {.generation = {.max_new_tokens = 8, .temperature = 1.0}, .lr = 1e-3,
                                .minibatch_size = 4, .steps = 10});
  Rng rng(3);
  const auto m = rs.step(policy, LetterReward{}, prompts, rng);
  const algo::RejectionSamplingBatch& b = rs.last_batch();
  const std::size_t n = 4;
  REQUIRE(b.answers.size() == prompts.size() * n);
  REQUIRE(b.kept.size() == prompts.size());
  // Scores straight from the reward model, and the first argmax of each prompt's group.
  const std::vector<double> direct = LetterReward{}.score(b.prompts, b.answers);
  CHECK(direct == b.scores);
  double all = 0, kept = 0;
  bool distinct_answers = false;
  for (std::size_t p = 0; p < prompts.size(); ++p) {
    std::size_t arg = p * n;
    for (std::size_t j = p * n; j < (p + 1) * n; ++j) {
      CHECK(b.prompts[j] == prompts[p]);
      if (direct[j] > direct[arg]) arg = j;
      distinct_answers = distinct_answers || b.answers[j] != b.answers[p * n];
      all += direct[j] / static_cast<double>(b.answers.size());
    }
    CHECK(b.kept[p] == arg);
    kept += direct[arg] / static_cast<double>(prompts.size());
  }
  CHECK(distinct_answers);
  CHECK(metric(m, "objective/scores") == doctest::Approx(all).epsilon(1e-12));
  CHECK(metric(m, "rs/kept_score") == doctest::Approx(kept).epsilon(1e-12));
  CHECK(metric(m, "rs/kept") == static_cast<double>(prompts.size()));
  CHECK(metric(m, "loss/sft") > 0);
  CHECK(metric(m, "completions/mean_length") > 0);
  CHECK(metric(m, "lr") == 1e-3);
  CHECK(rs.steps_done() == 1);
}

TEST_CASE("RejectionSampling::select: the best of each group and the quantile rule's count") {
  // 16 distinct scores, 4 prompts of 4.
  const std::vector<double> s = {0.3, 0.9, 0.1, 0.5, 0.7, 0.2, 0.8, 0.6, 0.05, 0.15, 0.25, 0.35, 0.95, 0.4, 0.45, 0.55};
  RejectionSamplingConfig best{};
  CHECK(RejectionSampling::select(s, best) == std::vector<std::size_t>{1, 6, 11, 12});
  RejectionSamplingConfig q{.keep = RejectionSamplingConfig::above_quantile};
  // numpy.quantile(s, 0.75): position 11.25 between the 12th and 13th smallest; the top 4 stay.
  CHECK(RejectionSampling::select(s, q) == std::vector<std::size_t>{1, 4, 6, 12});
  for (double quantile : {0.0, 0.25, 0.5, 0.75, 0.9, 1.0}) {
    CAPTURE(quantile);
    q.quantile = quantile;
    const auto kept = RejectionSampling::select(s, q);
    const double t = numpy_quantile(s, quantile);
    const auto want = static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [&](double x) { return x >= t; }));
    CHECK(kept.size() == want);
    for (std::size_t k : kept) CHECK(s[k] >= t);
  }
  q.quantile = 0.5;
  CHECK(RejectionSampling::select(s, q).size() == 8);
  q.quantile = 1.0;
  CHECK(RejectionSampling::select(s, q) == std::vector<std::size_t>{12});
  q.quantile = 0.0;
  CHECK(RejectionSampling::select(s, q).size() == 16);
  // Ties: the first of equal best scores; every answer at the threshold stays.
  const std::vector<double> tied = {0.5, 0.5, 0.2, 0.5};
  CHECK(RejectionSampling::select(tied, best) == std::vector<std::size_t>{0});
  q.quantile = 0.75;
  CHECK(RejectionSampling::select(tied, q) == std::vector<std::size_t>{0, 1, 3});
  CHECK(test::error_of([&] { RejectionSampling::select(std::vector<double>(6, 0.0), best); }).find("6 scores") !=
        std::string::npos);
}

TEST_CASE("RejectionSampling: a step with the quantile rule keeps the answers above the batch quantile") {
  model::TextPolicy policy = tiny_policy(2);
  RejectionSampling rs(policy, {.keep = RejectionSamplingConfig::above_quantile, .quantile = 0.75,
                                .generation = {.max_new_tokens = 8, .temperature = 1.0}, .lr = 1e-3,
                                .minibatch_size = 4, .steps = 10});
  Rng rng(4);
  const auto m = rs.step(policy, LetterReward{}, prompts, rng);
  const algo::RejectionSamplingBatch& b = rs.last_batch();
  const double t = numpy_quantile(b.scores, 0.75);
  std::vector<std::size_t> want;
  for (std::size_t j = 0; j < b.scores.size(); ++j)
    if (b.scores[j] >= t) want.push_back(j);
  CHECK(b.kept == want);
  CHECK(metric(m, "rs/kept") == static_cast<double>(want.size()));
  CHECK(want.size() >= b.scores.size() / 4);
}

TEST_CASE("RejectionSampling: steps on the toy reward raise the mean reward of sampled answers") {
  model::TextPolicy policy = tiny_policy(3);
  const double before = mean_reward(policy, 8);
  RejectionSampling rs(policy, {.generation = {.max_new_tokens = 8, .temperature = 1.0}, .lr = 1e-2,
                                .sft_epochs = 2, .minibatch_size = 8, .steps = 15});
  Rng rng(5);
  std::vector<std::string> ps;
  for (int t = 0; t < 2; ++t) ps.insert(ps.end(), prompts.begin(), prompts.end());
  algo::StepMetrics first, last;
  for (int s = 0; s < 15; ++s) {
    last = rs.step(policy, LetterReward{}, ps, rng);
    if (s == 0) first = last;
  }
  const double after = mean_reward(policy, 8);
  INFO("mean reward before ", before, " after ", after);
  CHECK(after > before + 0.05);
  CHECK(metric(last, "objective/scores") > metric(first, "objective/scores"));
  CHECK(metric(last, "rs/kept_score") >= metric(last, "objective/scores"));
}

TEST_CASE("RejectionSampling: restore(state()) into one built the same way continues the run bit for bit") {
  const RejectionSamplingConfig cfg{.generation = {.max_new_tokens = 6, .temperature = 1.0}, .lr = 1e-2,
                                    .sft_epochs = 2, .minibatch_size = 3, .steps = 10};
  model::TextPolicy a = tiny_policy(4);
  RejectionSampling rs_a(a, cfg);
  Rng rng_a(9);
  for (int s = 0; s < 2; ++s) rs_a.step(a, LetterReward{}, prompts, rng_a);
  model::TextPolicy b = tiny_policy(4);
  RejectionSampling rs_b(b, cfg);
  copy_parameters(a, b);
  rs_b.restore(rs_a.state());
  Rng rng_b = rng_a;
  CHECK(rs_b.steps_done() == 2);
  for (int s = 0; s < 2; ++s) {
    const auto ma = rs_a.step(a, LetterReward{}, prompts, rng_a);
    const auto mb = rs_b.step(b, LetterReward{}, prompts, rng_b);
    CHECK(ma == mb);
  }
  CHECK(same_parameters(a, b));
  // Without the optimizer's state the run differs.
  model::TextPolicy c = tiny_policy(4);
  RejectionSampling rs_c(c, cfg);
  Rng rng_c(9);
  for (int s = 0; s < 2; ++s) rs_c.step(c, LetterReward{}, prompts, rng_c);
  model::TextPolicy d = tiny_policy(4);
  RejectionSampling rs_d(d, cfg);
  copy_parameters(c, d);
  Rng rng_d = rng_c;
  rs_c.step(c, LetterReward{}, prompts, rng_c);
  rs_d.step(d, LetterReward{}, prompts, rng_d);
  CHECK_FALSE(same_parameters(c, d));
}

TEST_CASE("RejectionSampling: bad configs and inputs give clear errors") {
  model::TextPolicy policy = tiny_policy(5);
  CHECK(test::error_of([&] { RejectionSampling bad(policy, {.samples_per_prompt = 0}); }).find("samples_per_prompt") !=
        std::string::npos);
  CHECK(test::error_of([&] { RejectionSampling bad(policy, {.quantile = 1.5}); }).find("quantile") !=
        std::string::npos);
  CHECK(test::error_of([&] { RejectionSampling bad(policy, {.lr = -1}); }).find("lr") != std::string::npos);
  CHECK(test::error_of([&] { RejectionSampling bad(policy, {.generation = {.greedy = true}}); }).find("greedy") !=
        std::string::npos);
  RejectionSampling rs(policy, {});
  Rng rng(1);
  CHECK(test::error_of([&] { rs.step(policy, LetterReward{}, std::vector<std::string>{}, rng); }).find("no prompts") !=
        std::string::npos);
  model::TextPolicy other = tiny_policy(5);
  CHECK(test::error_of([&] { rs.step(other, LetterReward{}, prompts, rng); }).find("a different policy") !=
        std::string::npos);
}
