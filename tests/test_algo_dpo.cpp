#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "error_of.hpp"
#include "gradcheck.hpp"
#include "rlxf/algo/dpo.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/core/threading.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/tokenize/bpe.hpp"

using namespace rlxf;
using algo::Dpo;
using algo::DpoConfig;
using algo::PreferenceExample;

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

// Every answer scores the same: every pair is a tie.
struct ConstantReward {
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string>) const {
    return std::vector<double>(prompts.size(), 0.5);
  }
};

struct NanReward {
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string>) const {
    return std::vector<double>(prompts.size(), std::nan(""));
  }
};

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

std::vector<std::string> repeat(const std::vector<std::string>& v, std::size_t times) {
  std::vector<std::string> out;
  for (std::size_t t = 0; t < times; ++t) out.insert(out.end(), v.begin(), v.end());
  return out;
}

// Mean reward of 64 answers sampled at temperature 1 with a fixed seed.
double mean_reward(const model::TextPolicy& policy, std::size_t max_new_tokens) {
  Rng rng(12345);
  const auto ps = repeat(prompts, 8);
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

std::vector<PreferenceExample> word_pairs() {
  return {{"the cat", "sat on the mat", "ate the bone"}, {"a dog", "and the mat", "and the bird"},
          {"the bird", "sang on the mat", "sang a song"}, {"cats and", "the mat", "the dogs"},
          {"the song", "a cat on the mat", "a dog on the bone"}, {"dogs and", "mat", "birds"}};
}

// Sum over pairs of log p(chosen) - log p(rejected) under the policy.
double chosen_minus_rejected(const model::TextPolicy& policy, const std::vector<PreferenceExample>& pairs) {
  std::vector<std::string> p, a;
  for (const auto& e : pairs) p.push_back(e.prompt), a.push_back(e.chosen);
  for (const auto& e : pairs) p.push_back(e.prompt), a.push_back(e.rejected);
  const auto lp = algo::sequence_logprobs(policy.policy(), policy.encode(p, a));
  double s = 0;
  for (std::size_t k = 0; k < pairs.size(); ++k) s += static_cast<double>(lp[k]) - static_cast<double>(lp[pairs.size() + k]);
  return s;
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

TEST_CASE("Dpo: models Algorithm, step 0 (policy = reference) gives ln 2 and zero rewards") {
  static_assert(Algorithm<Dpo, model::TextPolicy, LetterReward>);
  for (bool offline : {false, true}) {
    CAPTURE(offline);
    model::TextPolicy policy = tiny_policy(1);
    Dpo dpo(policy, {.lr = 1e-3, .steps = 10, .minibatch_size = 64,
                     .generation = {.max_new_tokens = 8, .temperature = 1.0}});
    Rng rng(7);
    const auto m = offline ? dpo.train_offline(policy, word_pairs(), rng)
                           : dpo.step(policy, LetterReward{}, repeat(prompts, 2), rng);
    const double pairs = metric(m, "pairs/count");
    CHECK(pairs > 0);
    if (!offline) CHECK(pairs + metric(m, "pairs/ties") == 16.0);
    CHECK(metric(m, "loss/dpo") == doctest::Approx(std::log(2.0)).epsilon(1e-6));
    CHECK(std::abs(metric(m, "rewards/chosen")) < 1e-6);
    CHECK(std::abs(metric(m, "rewards/rejected")) < 1e-6);
    CHECK(std::abs(metric(m, "rewards/margins")) < 1e-6);
    CHECK(metric(m, "logps/chosen") < 0);
    CHECK(metric(m, "logps/rejected") < 0);
    CHECK(metric(m, "lr") == 1e-3);
    CHECK(dpo.steps_done() == 1);
  }
}

TEST_CASE("dpo_batch_loss: the gradient it feeds Policy::backward matches finite differences of the loss") {
  Rng rng(3);
  const model::DecoderConfig cfg{.vocab_size = 11, .max_positions = 16, .d_model = 8, .n_layers = 1, .n_heads = 2,
                                 .d_hidden = 16, .init_std = 0.3};
  model::Policy<double> policy(cfg, rng);
  // Two pairs: rows 0, 1 chosen, rows 2, 3 rejected; prompt width 3, answers of 3, 1, 2, 3 tokens.
  constexpr std::size_t rows = 4, p = 3, n = 3;
  const std::size_t prompt_len[rows] = {3, 2, 3, 2}, answer_len[rows] = {3, 1, 2, 3};
  model::SequenceBatch batch{zeros<std::int32_t, 2>({rows, p + n}), zeros<std::uint8_t, 2>({rows, p + n}), p};
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t j = 0; j < p + n; ++j) {
      batch.tokens(r, j) = static_cast<std::int32_t>(rng.next_below(11));
      batch.mask(r, j) = j < p ? (j >= p - prompt_len[r]) : (j - p < answer_len[r]);
    }
  // The reference: the policy's sequence log-probs shifted, so that h != 0.
  const std::vector<double> seq = algo::sequence_logprobs(policy, batch);
  const std::vector<double> ref_c = {seq[0] + 0.7, seq[1] - 1.3}, ref_r = {seq[2] - 0.4, seq[3] + 2.1};
  auto ps = policy.parameters(false);
  const algo::DpoOptions options[] = {{.beta = 0.5},
                                      {.beta = 0.3, .label_smoothing = 0.2},
                                      {.beta = 0.5, .loss = algo::PreferenceLossType::ipo}};
  for (const auto& opt : options) {
    CAPTURE(opt.beta);
    CAPTURE(static_cast<int>(opt.loss));
    for (auto& q : ps) q.param->zero_grad();
    const algo::DpoStats st = algo::dpo_batch_loss(policy, batch, ref_c, ref_r, opt, true);
    // Chain rule at the sequence level: dpo_loss's own gradient on the same sums.
    std::vector<double> dc(2), dr(2);
    const algo::DpoStats direct = algo::dpo_loss<double>(std::span<const double>(seq).first(2),
                                                         std::span<const double>(seq).subspan(2), ref_c, ref_r, dc, dr, opt);
    CHECK(st.loss == doctest::Approx(direct.loss).epsilon(1e-12));
    CHECK(dc[0] != 0.0);
    auto loss = [&] { return algo::dpo_batch_loss(policy, batch, ref_c, ref_r, opt, false).loss; };
    std::size_t checked = 0;
    for (auto& q : ps) {
      const std::vector<double> g(q.param->grad.begin(), q.param->grad.end());
      const auto r = test::check_gradient({q.param->value.data(), q.param->size()}, g, loss, 1e-3, 5);
      INFO(q.name, " error ", r.max_error, " at ", r.worst, " analytic ", r.analytic, " numeric ", r.numeric);
      CHECK(r.max_error < 1e-6);
      checked += r.checked;
    }
    CHECK(checked > 20);
  }
}

TEST_CASE("Dpo: online steps on the toy reward raise the mean reward of sampled answers") {
  model::TextPolicy policy = tiny_policy(2);
  const double before = mean_reward(policy, 8);
  Dpo dpo(policy, {.lr = 1e-2, .steps = 20, .minibatch_size = 16,
                   .generation = {.max_new_tokens = 8, .temperature = 1.0}});
  Rng rng(11);
  const auto ps = repeat(prompts, 4);
  algo::StepMetrics last;
  for (int s = 0; s < 20; ++s) last = dpo.step(policy, LetterReward{}, ps, rng);
  const double after = mean_reward(policy, 8);
  INFO("mean reward before ", before, " after ", after);
  CHECK(after > before + 0.05);
  CHECK(metric(last, "rewards/margins") > 0);
  CHECK(metric(last, "lr") == doctest::Approx(1e-2 / 20));
}

TEST_CASE("Dpo: offline pairs whose chosen answers contain 'mat' raise log p(chosen) - log p(rejected)") {
  model::TextPolicy policy = tiny_policy(3);
  const auto pairs = word_pairs();
  const double before = chosen_minus_rejected(policy, pairs);
  Dpo dpo(policy, {.lr = 1e-2, .steps = 10, .minibatch_size = 4});
  Rng rng(5);
  algo::StepMetrics m;
  for (int s = 0; s < 10; ++s) m = dpo.train_offline(policy, pairs, rng);
  const double after = chosen_minus_rejected(policy, pairs);
  INFO("margin before ", before, " after ", after);
  CHECK(after > before + 1.0);
  CHECK(metric(m, "rewards/accuracies") == 1.0);
  CHECK(metric(m, "rewards/margins") > 0);
  CHECK(metric(m, "pairs/count") == 6.0);
}

TEST_CASE("Dpo: restore(state()) into a Dpo built the same way continues the run bit for bit") {
  const DpoConfig cfg{.lr = 1e-2, .steps = 10, .minibatch_size = 4, .generation = {.max_new_tokens = 6, .temperature = 1.0},
                      .epochs_per_step = 2};
  const auto ps = repeat(prompts, 2);
  const auto pairs = word_pairs();
  model::TextPolicy a = tiny_policy(4);
  Dpo dpo_a(a, cfg);
  Rng rng_a(9);
  dpo_a.step(a, LetterReward{}, ps, rng_a);
  dpo_a.train_offline(a, pairs, rng_a);
  // Checkpoint: the policy's weights, the algorithm's state (through a file) and the rng.
  const auto path = std::filesystem::temp_directory_path() / "rlxf_test_algo_dpo_state.safetensors";
  dpo_a.state().save(path);
  model::TextPolicy b = tiny_policy(4);  // the starting policy, as a resumed run rebuilds it
  Dpo dpo_b(b, cfg);
  copy_parameters(a, b);
  dpo_b.restore(algo::AlgorithmState::load(path));
  std::filesystem::remove(path);
  Rng rng_b = rng_a;
  CHECK(dpo_b.steps_done() == 2);
  for (int s = 0; s < 2; ++s) {
    const auto ma = dpo_a.step(a, LetterReward{}, ps, rng_a);
    const auto mb = dpo_b.step(b, LetterReward{}, ps, rng_b);
    CHECK(ma == mb);
    const auto oa = dpo_a.train_offline(a, pairs, rng_a);
    const auto ob = dpo_b.train_offline(b, pairs, rng_b);
    CHECK(oa == ob);
  }
  CHECK(same_parameters(a, b));
}

TEST_CASE("Dpo: ties are skipped, bad inputs and NaNs give clear errors") {
  model::TextPolicy policy = tiny_policy(5);
  const DpoConfig cfg{.steps = 10, .generation = {.max_new_tokens = 4, .temperature = 1.0}};
  Dpo dpo(policy, cfg);
  Rng rng(1);
  model::TextPolicy untouched = tiny_policy(5);
  const auto m = dpo.step(policy, ConstantReward{}, prompts, rng);
  CHECK(metric(m, "pairs/ties") == 8.0);
  CHECK(metric(m, "pairs/count") == 0.0);
  CHECK(same_parameters(policy, untouched));
  CHECK(dpo.steps_done() == 1);

  CHECK(test::error_of([&] { dpo.step(policy, NanReward{}, prompts, rng); }).find("score of answer 0 is nan") !=
        std::string::npos);
  CHECK(test::error_of([&] { dpo.step(policy, LetterReward{}, std::vector<std::string>{}, rng); }).find("no prompts") !=
        std::string::npos);
  model::TextPolicy other = tiny_policy(5);
  CHECK(test::error_of([&] { dpo.train_offline(other, word_pairs(), rng); }).find("a different policy") !=
        std::string::npos);
  CHECK(test::error_of([&] { Dpo bad(policy, {.lr = 0}); }).find("DpoConfig.lr") != std::string::npos);
  CHECK(test::error_of([&] { Dpo bad(policy, {.generation = {.greedy = true}}); }).find("must sample") !=
        std::string::npos);
  CHECK(test::error_of([&] {
          Dpo bad(policy, {.loss = {.label_smoothing = 0.1, .loss = algo::PreferenceLossType::ipo}});
        }).find("sigmoid loss only") != std::string::npos);

  // A NaN weight after construction (the reference stays finite): the loss refuses it.
  policy.policy().parameters(false)[0].param->value.data()[0] = std::nanf("");
  const std::string e = test::error_of([&] { dpo.train_offline(policy, word_pairs(), rng); });
  INFO(e);
  CHECK(e.find("Dpo step 1") != std::string::npos);
  CHECK(e.find("not finite") != std::string::npos);
}
