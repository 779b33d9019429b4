// rlxf::algo::Ppo on a tiny policy and a toy reward (the fraction of 'a' in the answer): the
// first step with policy == reference (KL 0, ratio 1, scores recomputed from the same rollout),
// config and policy errors, learning on the toy reward, the adaptive KL controller's update,
// bit-exact resume through AlgorithmState's file, and the non-finite guard.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "error_of.hpp"
#include "rlxf/algo/algorithm.hpp"
#include "rlxf/algo/ppo.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/tokenize/bpe.hpp"

using namespace rlxf;
using algo::Ppo;
using algo::PpoConfig;
using rlxf::test::error_of;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Reward: the fraction of the answer's bytes that are 'a' (0 when empty).
struct LetterAReward {
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string> responses) const {
    RLXF_REQUIRE(prompts.size() == responses.size(), "LetterAReward: ", prompts.size(), " prompts, ",
                 responses.size(), " responses");
    std::vector<double> out;
    for (const std::string& r : responses)
      out.push_back(r.empty() ? 0.0
                              : static_cast<double>(std::count(r.begin(), r.end(), 'a')) / static_cast<double>(r.size()));
    return out;
  }
};
static_assert(RewardModel<LetterAReward>);
static_assert(Algorithm<Ppo, model::TextPolicy, LetterAReward>);

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

const std::vector<std::string> prompts = {"the cat", "a dog", "the bird", "cats and",
                                          "the mat", "a bone", "the song", "dogs and"};

std::vector<std::string> repeat(const std::vector<std::string>& v, std::size_t times) {
  std::vector<std::string> out;
  for (std::size_t t = 0; t < times; ++t) out.insert(out.end(), v.begin(), v.end());
  return out;
}

double mean(const std::vector<double>& xs) {
  double s = 0;
  for (double x : xs) s += x / static_cast<double>(xs.size());
  return s;
}

// Mean toy reward of 64 answers sampled at temperature 1 with a fixed seed.
double mean_reward(const model::TextPolicy& policy) {
  Rng rng(12345);
  const auto ps = repeat(prompts, 8);
  const model::Rollout r = policy.sample(ps, {.max_new_tokens = 8, .temperature = 1.0}, rng);
  return mean(LetterAReward{}.score(ps, r.texts));
}

double metric(const algo::StepMetrics& m, const std::string& name) {
  for (const auto& [k, v] : m)
    if (k == name) return v;
  FAIL("no metric ", name);
  return 0;
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

// A unique path under the system temp dir, removed at scope exit.
struct TempPath {
  fs::path path;
  explicit TempPath(const std::string& tag) {
    static std::atomic<int> counter{0};
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    path = fs::temp_directory_path() / ("rlxf_ppotest_" + tag + "_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(now) + "_" + std::to_string(counter++));
  }
  ~TempPath() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;
};

const model::GenerationConfig gen8{.max_new_tokens = 8, .temperature = 1.0};

}  // namespace

TEST_CASE("Ppo: the first step with policy == reference has KL 0, ratio 1 and the RM's mean score") {
  const std::size_t B = 24;  // (1/24 is inexact: val/num_eos_tokens must still be a whole count)
  const auto ps = repeat(prompts, 3);
  model::TextPolicy policy = tiny_policy(1);
  // One epoch, one minibatch of the whole batch: the only update's ratio is taken before it.
  Ppo ppo(policy, {.steps = 10, .generation = gen8, .ppo_epochs = 1, .minibatch_size = B, .lr = 1e-3});
  CHECK(ppo.steps_done() == 0);
  CHECK(ppo.beta() == 0.1);  // adaptive, init 0.1
  Rng rng(7);
  // Ppo::step samples first: the same rng state and config give the same answers.
  Rng copy = rng;
  const model::Rollout r0 = policy.sample(ps, gen8, copy);
  const auto m = ppo.step(policy, LetterAReward{}, ps, rng);
  CHECK(ppo.steps_done() == 1);

  CHECK(metric(m, "objective/kl") == 0.0);
  CHECK(metric(m, "objective/non_score_reward") == 0.0);
  CHECK(std::abs(metric(m, "val/ratio") - 1.0) < 1e-6);
  CHECK(metric(m, "policy/approxkl_avg") < 1e-12);
  CHECK(metric(m, "policy/clipfrac_avg") == 0.0);
  CHECK(metric(m, "lr") == 1e-3);
  const std::vector<double> scores = LetterAReward{}.score(ps, r0.texts);
  double want = 0, eos = 0, length = 0;
  for (std::size_t b = 0; b < B; ++b) {
    want += scores[b] / static_cast<double>(B);
    eos += r0.ended[b] ? 1.0 : 0.0;
  }
  const model::Mask mask = r0.batch.response_mask();
  for (std::uint8_t v : mask) length += v;
  CHECK(metric(m, "objective/scores") == doctest::Approx(want).epsilon(1e-12));
  CHECK(metric(m, "val/num_eos_tokens") == eos);
  CHECK(metric(m, "completions/mean_length") == doctest::Approx(length / static_cast<double>(B)).epsilon(1e-12));
  CHECK(metric(m, "objective/entropy") > 0);
  CHECK(metric(m, "objective/entropy") <= std::log(static_cast<double>(policy.policy().config().vocab_size)) + 1e-6);
  // With scores normalised over the batch, rlhf_reward (normalised scores + 0) averages 0.
  CHECK(std::abs(metric(m, "objective/rlhf_reward")) < 1e-5);
  // The update moved the policy; the reference stayed the starting weights.
  model::TextPolicy fresh = tiny_policy(1);
  auto pr = fresh.policy().parameters(false);
  CHECK(!same_parameters(policy, fresh));
  model::Policy<float> ref_copy = ppo.reference();
  auto rr = ref_copy.parameters(false);
  bool ref_same = rr.size() == pr.size();
  for (std::size_t k = 0; ref_same && k < rr.size(); ++k) ref_same = rr[k].param->value == pr[k].param->value;
  CHECK(ref_same);
  // TRL names are present.
  for (const char* name : {"objective/kl", "objective/entropy", "objective/non_score_reward", "objective/rlhf_reward",
                           "objective/scores", "policy/approxkl_avg", "policy/clipfrac_avg", "loss/policy_avg",
                           "loss/value_avg", "val/clipfrac_avg", "val/ratio", "val/num_eos_tokens"})
    CHECK(std::isfinite(metric(m, name)));
}

TEST_CASE("Ppo: invalid configs and a different policy object give clear errors") {
  model::TextPolicy policy = tiny_policy(2);
  CHECK(contains(error_of([&] { Ppo(policy, {.generation = {.max_new_tokens = 8, .top_k = 5}}); }),
                 "top_k/top_p must be off"));
  CHECK(contains(error_of([&] { Ppo(policy, {.generation = {.max_new_tokens = 8, .top_p = 0.9}}); }),
                 "top_k/top_p must be off"));
  CHECK(contains(error_of([&] { Ppo(policy, {.generation = {.max_new_tokens = 8, .greedy = true}}); }),
                 "must sample, not decode greedily"));
  CHECK(contains(error_of([&] { Ppo(policy, {.lr = 0.0}); }), "PpoConfig.lr = 0: expected a finite number in (0, 1]"));
  CHECK(contains(error_of([&] { Ppo(policy, {.lr = std::nan("")}); }), "PpoConfig.lr = nan"));
  CHECK(contains(error_of([&] { Ppo(policy, {.steps = 0}); }), "PpoConfig.steps must be > 0"));
  CHECK(contains(error_of([&] { Ppo(policy, {.ppo_epochs = 0}); }), "PpoConfig.ppo_epochs must be > 0"));
  CHECK(contains(error_of([&] { Ppo(policy, {.minibatch_size = 0}); }), "PpoConfig.minibatch_size must be > 0"));
  CHECK(contains(error_of([&] { Ppo(policy, {.vf_coef = -1.0}); }), "PpoConfig.vf_coef must be >= 0"));

  Ppo ppo(policy, {.steps = 4, .generation = gen8});
  model::TextPolicy other = tiny_policy(2);  // equal weights, another object
  Rng rng(1);
  CHECK(contains(error_of([&] { ppo.step(other, LetterAReward{}, prompts, rng); }),
                 "a different policy than the one Ppo was built with"));
  const std::vector<std::string> none;
  CHECK(contains(error_of([&] { ppo.step(policy, LetterAReward{}, none, rng); }), "no prompts"));
  CHECK(ppo.steps_done() == 0);
}

TEST_CASE("Ppo: steps on the toy reward raise the mean reward of sampled answers") {
  model::TextPolicy policy = tiny_policy(3);
  const double before = mean_reward(policy);
  const std::size_t steps = 20;
  Ppo ppo(policy, {.steps = steps, .generation = gen8, .ppo_epochs = 4, .minibatch_size = 16, .lr = 1e-2});
  Rng rng(11);
  const auto ps = repeat(prompts, 4);
  std::vector<double> scores;
  for (std::size_t s = 0; s < steps; ++s) scores.push_back(metric(ppo.step(policy, LetterAReward{}, ps, rng), "objective/scores"));
  const double after = mean_reward(policy);
  INFO("mean reward before ", before, " after ", after, "; first step's scores ", scores.front(), ", last ",
       scores.back());
  // (Seeds 3, 13, 23, 33 x rng 11, 21 all go from 0.02-0.03 to 0.45-0.55.)
  CHECK(after > before + 0.25);
  CHECK(scores.back() > scores.front());
}

TEST_CASE("Ppo: the adaptive KL controller's beta follows Ziegler's update with the step's objective/kl") {
  const auto ps = repeat(prompts, 2);
  const std::size_t B = ps.size();
  const double init = 0.3, target = 0.05, horizon = 200;
  model::TextPolicy policy = tiny_policy(4);
  Ppo ppo(policy, {.steps = 10, .generation = gen8, .lr = 1e-2, .adaptive = {.init = init, .target = target, .horizon = horizon}});
  Rng rng(3);
  double beta = ppo.beta();
  CHECK(beta == init);
  for (int s = 0; s < 3; ++s) {
    CAPTURE(s);
    const auto m = ppo.step(policy, LetterAReward{}, ps, rng);
    const double kl = metric(m, "objective/kl");
    if (s == 0) CHECK(kl == 0.0);  // e = -0.2: beta shrinks
    if (s > 0) CHECK(kl != 0.0);  // k1 is a sample estimate: it can be negative
    // The penalty used this step's beta, before the update.
    CHECK(metric(m, "objective/non_score_reward") == doctest::Approx(-beta * kl).epsilon(1e-12));
    const double e = std::clamp(kl / target - 1.0, -0.2, 0.2);
    const double want = beta * (1.0 + e * static_cast<double>(B) / horizon);
    CHECK(ppo.beta() == doctest::Approx(want).epsilon(1e-14));
    CHECK(ppo.beta() != beta);
    beta = ppo.beta();
  }
  // A fixed controller keeps kl_coef.
  model::TextPolicy fixed_policy = tiny_policy(4);
  Ppo fixed(fixed_policy, {.steps = 10, .generation = gen8, .adaptive_kl = false, .kl_coef = 0.07});
  Rng rng2(3);
  fixed.step(fixed_policy, LetterAReward{}, ps, rng2);
  CHECK(fixed.beta() == 0.07);
}

TEST_CASE("Ppo: state -> file -> restore into a Ppo built the same way continues bit for bit") {
  const PpoConfig cfg{.steps = 10, .generation = gen8, .ppo_epochs = 2, .minibatch_size = 8, .lr = 3e-3,
                      .missing_eos_penalty = 0.5};
  const auto ps = repeat(prompts, 2);
  model::TextPolicy a = tiny_policy(5);
  Ppo ppo_a(a, cfg);
  Rng rng_a(9);
  for (int s = 0; s < 2; ++s) ppo_a.step(a, LetterAReward{}, ps, rng_a);
  TempPath file("state");
  ppo_a.state().save(file.path);
  const algo::AlgorithmState loaded = algo::AlgorithmState::load(file.path);
  CHECK(loaded.steps == 2);
  CHECK(loaded.kl.adaptive);
  CHECK(loaded.kl.value == ppo_a.beta());
  CHECK(loaded.moments.count == 2 * ps.size());

  model::TextPolicy b = tiny_policy(5);  // the starting policy, as a resumed run rebuilds it
  Ppo ppo_b(b, cfg);
  copy_parameters(a, b);
  ppo_b.restore(loaded);
  CHECK(ppo_b.steps_done() == 2);
  CHECK(ppo_b.beta() == ppo_a.beta());
  Rng rng_b = rng_a;
  for (int s = 0; s < 2; ++s) {
    CAPTURE(s);
    const auto ma = ppo_a.step(a, LetterAReward{}, ps, rng_a);
    const auto mb = ppo_b.step(b, LetterAReward{}, ps, rng_b);
    CHECK(ma == mb);
    CHECK(same_parameters(a, b));
  }
  CHECK(ppo_a.beta() == ppo_b.beta());

  // Without the restore (fresh optimizer moments, controller and statistics) the run differs.
  model::TextPolicy c = tiny_policy(5);
  Ppo ppo_c(c, cfg);
  copy_parameters(a, c);
  Rng rng_c = rng_a;
  ppo_a.step(a, LetterAReward{}, ps, rng_a);
  ppo_c.step(c, LetterAReward{}, ps, rng_c);
  CHECK(!same_parameters(a, c));

  // A state file that is not one names what is wrong.
  TempPath bad("bad");
  io::SafetensorsWriter w;
  const std::vector<float> x = {1.0f};
  w.add("x", x, {1});
  w.write(bad.path);
  CHECK(contains(error_of([&] { (void)algo::AlgorithmState::load(bad.path); }), "no 'rlxf.algorithm' metadata"));
}

TEST_CASE("Ppo: a NaN in a parameter makes step throw an error about a non-finite value") {
  for (const char* which : {"decoder", "value head"}) {
    CAPTURE(which);
    model::TextPolicy policy = tiny_policy(6);
    Ppo ppo(policy, {.steps = 4, .generation = gen8});
    auto params = policy.policy().parameters(true);
    auto& target = std::string(which) == "decoder" ? params.front() : params.back();
    REQUIRE((std::string(which) == "decoder") != target.name.starts_with("v_head."));
    target.param->value.data()[0] = std::numeric_limits<float>::quiet_NaN();
    Rng rng(2);
    const std::string err = error_of([&] { ppo.step(policy, LetterAReward{}, prompts, rng); });
    INFO(err);
    CHECK(contains(err, "finite"));
    CHECK(ppo.steps_done() == 0);
  }
}
