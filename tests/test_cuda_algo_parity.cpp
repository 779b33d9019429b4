// One PPO update, one DPO step, SFT and reward-classifier training on the emulated CUDA backend (bf16 activations, f32 master
// weights, the CUDA kernels run by the CPU emulator) against the same algorithm on
// cpu::Backend<float>, from the same bf16-rounded weights and the same data: the algorithms are
// written once over rlxf::Policy, so only the backend differs. The PPO update runs on a
// rollout sampled once by the CPU policy (sampling from two backends' logits could pick
// different tokens where the cumulative mass is within bf16's noise of the draw, and the
// comparison would then be of different data).
//
// Tolerances, by rule. Metrics that are counts or come from the data alone (scores, lengths,
// EOS counts, the learning rate, the KL to a reference that is still the policy: 0) must be
// equal. The others are computed from bf16 forwards and backwards, two updates deep: a metric
// of order one (losses over whitened advantages, log-probs summed over a sequence, entropies)
// within 2^-5 of its scale, max(|ref|, 1); the differences of nearby numbers (approximate KL
// and clip fractions, from ratios near 1; DPO's implicit rewards, beta times differences of
// log-probs that one update moved) within 0.02 absolute. Measured here: the policy loss within
// 1e-4, the approximate KL (0.28) within 5e-4, the DPO loss within 5e-4, the implicit rewards
// within 1e-3; a lost gradient, mask or update would be off by their whole size.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <cmath>
#include <cstddef>
#include <map>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlxf/algo/dpo.hpp"
#include "rlxf/algo/ppo.hpp"
#include "rlxf/algo/sft.hpp"
#include "rlxf/cpu/backend.hpp"
#include "rlxf/cuda/emulate/device.hpp"
#include "rlxf/model/policy.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/reward/classifier_training.hpp"
#include "rlxf/tokenize/bpe.hpp"
#include "rlxf/train/trainer.hpp"
#include "backend_parity.hpp"
#include "temp_dir.hpp"

namespace {

using rlxf::Rng;
using EmuBackend = rlxf::cuda::Backend<rlxf::cuda::emulate::Device>;
using Cpu = rlxf::cpu::Backend<float>;
namespace algo = rlxf::algo;
namespace model = rlxf::model;
namespace nn = rlxf::nn;
using CpuPolicy = model::BasicPolicy<Cpu>;
using EmuPolicy = model::BasicPolicy<EmuBackend>;

static_assert(rlxf::Policy<EmuPolicy>, "the emulated backend's policy models rlxf::Policy");

// Reward: the fraction of the answer's bytes that are 'a' (0 when empty).
struct LetterAReward {
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string> responses) const {
    REQUIRE(prompts.size() == responses.size());
    std::vector<double> out;
    for (const std::string& r : responses)
      out.push_back(r.empty() ? 0.0
                              : static_cast<double>(std::count(r.begin(), r.end(), 'a')) / static_cast<double>(r.size()));
    return out;
  }
};

rlxf::tokenize::Bpe tiny_bpe() {
  const std::vector<std::string> corpus = {"the cat sat on the mat", "a dog ate the bone", "the bird sang a song",
                                           "cats and dogs and birds", "a banana and a papaya", "aaa aa a"};
  return rlxf::tokenize::Bpe::train(corpus, {.vocab_size = 280});
}

model::DecoderConfig tiny_config(std::size_t vocab) {
  return {.vocab_size = vocab, .max_positions = 48, .d_model = 128, .n_layers = 1, .n_heads = 2, .d_hidden = 256};
}

struct Pair {
  model::BasicTextPolicy<CpuPolicy> cpu;
  model::BasicTextPolicy<EmuPolicy> emu;
};

// The two text policies, the emulated one with the CPU one's bf16-rounded weights (value head
// included).
Pair policies(EmuBackend& backend) {
  rlxf::tokenize::Bpe bpe = tiny_bpe();
  const model::DecoderConfig cfg = tiny_config(bpe.vocab_size());
  Rng rng_cpu(5), rng_emu(5);
  Pair p{model::BasicTextPolicy<CpuPolicy>(bpe, CpuPolicy(cfg, rng_cpu)),
         model::BasicTextPolicy<EmuPolicy>(bpe, EmuPolicy(cfg, rng_emu, nn::BackendRef<EmuBackend>(backend)))};
  rlxf::test::share_weights(p.cpu.policy().parameters(true), p.emu.policy().parameters(true));
  return p;
}

// The validation losses of two training runs agree by the order-one rule.
void compare_validations(const rlxf::reward::TrainReport& got, const rlxf::reward::TrainReport& ref) {
  REQUIRE(got.steps == ref.steps);
  REQUIRE(got.validations.size() == ref.validations.size());
  REQUIRE(!ref.validations.empty());
  for (std::size_t i = 0; i < ref.validations.size(); ++i) {
    const double z = got.validations[i].val_loss, r = ref.validations[i].val_loss;
    INFO("validation ", i, ": loss on the emulated CUDA backend ", z, ", on the CPU ", r);
    CHECK(std::abs(z - r) <= std::max(std::abs(r), 1.0) / 32);
  }
}

// Metric by metric, under the rules above; `exact` and `small` name the metrics of those kinds.
void compare_metrics(const algo::StepMetrics& got, const algo::StepMetrics& ref, const std::set<std::string>& exact,
                     const std::set<std::string>& small) {
  REQUIRE(got.size() == ref.size());
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const auto& [name, r] = ref[i];
    REQUIRE(got[i].first == name);
    const double z = got[i].second;
    INFO(name, ": emulated CUDA ", z, ", CPU ", r);
    REQUIRE(std::isfinite(z));
    if (exact.contains(name))
      CHECK(z == r);
    else if (small.contains(name))
      CHECK(std::abs(z - r) <= 0.02);
    else
      CHECK(std::abs(z - r) <= std::max(std::abs(r), 1.0) / 32);
  }
}

const std::vector<std::string> prompts = {"the cat", "a dog", "the bird", "cats and",
                                          "the mat", "a bone", "the song", "dogs and"};

}  // namespace

TEST_CASE("backend parity: one PPO update on the emulated CUDA backend matches cpu::Backend<float>'s metrics") {
  EmuBackend backend;
  Pair p = policies(backend);
  const algo::PpoConfig cfg{.steps = 10, .generation = {.max_new_tokens = 8, .temperature = 0.7}, .ppo_epochs = 2,
                            .minibatch_size = 4, .lr = 1e-3, .normalize_scores = false};
  algo::BasicPpo<CpuPolicy> ppo_cpu(p.cpu, cfg);
  algo::BasicPpo<EmuPolicy> ppo_emu(p.emu, cfg);
  Rng sampling(1);
  const model::Rollout rollout = p.cpu.sample(prompts, cfg.generation, sampling);
  const std::vector<double> scores = LetterAReward{}.score(prompts, rollout.texts);
  Rng rng_cpu(2), rng_emu(2);
  const algo::StepMetrics ref = ppo_cpu.update(rollout, scores, rng_cpu);
  const algo::StepMetrics got = ppo_emu.update(rollout, scores, rng_emu);
  compare_metrics(got, ref,
                  {"objective/kl", "objective/non_score_reward", "objective/scores", "val/num_eos_tokens",
                   "completions/mean_length", "beta", "lr"},
                  {"policy/approxkl_avg", "policy/clipfrac_avg", "val/clipfrac_avg"});
}

TEST_CASE("backend parity: one offline DPO step on the emulated CUDA backend matches cpu::Backend<float>'s metrics") {
  EmuBackend backend;
  Pair p = policies(backend);
  const algo::DpoConfig cfg{.lr = 1e-3, .steps = 10, .minibatch_size = 2};
  algo::BasicDpo<CpuPolicy> dpo_cpu(p.cpu, cfg);
  algo::BasicDpo<EmuPolicy> dpo_emu(p.emu, cfg);
  const std::vector<algo::PreferenceExample> pairs = {{"the cat", " sat on a mat", " ate the bone"},
                                                      {"a dog", " and a banana", " sang a song"},
                                                      {"the bird", " a papaya", " the dogs"},
                                                      {"cats and", " aaa aa a", " birds"}};
  Rng rng_cpu(3), rng_emu(3);
  const algo::StepMetrics ref = dpo_cpu.train_offline(p.cpu, pairs, rng_cpu);
  const algo::StepMetrics got = dpo_emu.train_offline(p.emu, pairs, rng_emu);
  compare_metrics(got, ref, {"pairs/count", "lr"},
                  {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"});
}

TEST_CASE("backend parity: SFT on the emulated CUDA backend matches cpu::Backend<float>'s validation losses") {
  EmuBackend backend;
  Pair p = policies(backend);
  const std::vector<std::string> answers = {" sat on the mat", " ate the bone", " sang a song", " dogs and birds",
                                            " a banana", " and a papaya", " aaa aa a", " the cat sat"};
  const algo::SftConfig cfg{.train = {.epochs = 2, .batch_size = 3, .lr = 1e-3, .eval_every = 2, .patience = 0,
                                      .log_every = 0},
                            .max_answer_tokens = 8,
                            .validation_fraction = 0.25};
  const auto ref = algo::sft(p.cpu, prompts, answers, cfg);
  const auto got = algo::sft(p.emu, prompts, answers, cfg);
  compare_validations(got, ref);
}

TEST_CASE("backend parity: reward-classifier training on the emulated CUDA backend matches cpu::Backend<float>'s") {
  namespace reward = rlxf::reward;
  EmuBackend backend;
  const model::EncoderConfig cfg = rlxf::test::tiny_encoder_config(64, 1);
  Rng rng_cpu(8), rng_emu(8);
  model::BasicSequenceClassifier<Cpu> cpu(cfg, 2, rng_cpu);
  model::BasicSequenceClassifier<EmuBackend> emu(cfg, 2, rng_emu, nn::BackendRef<EmuBackend>(backend));
  rlxf::test::share_weights(cpu.parameters(), emu.parameters());
  // Label 1 when the sequence holds more even ids than odd ones: something to learn.
  std::vector<reward::LabelledSequence> data;
  Rng draw(4);
  for (std::size_t i = 0; i < 24; ++i) {
    reward::LabelledSequence e;
    const std::size_t len = 3 + draw.next_below(8);
    int even = 0;
    for (std::size_t t = 0; t < len; ++t) {
      e.ids.push_back(static_cast<std::int32_t>(draw.next_below(64)));
      even += e.ids.back() % 2 == 0 ? 1 : -1;
    }
    e.label = even > 0 ? 1 : 0;
    data.push_back(std::move(e));
  }
  const std::span<const reward::LabelledSequence> all(data);
  const reward::ClassifierTrainConfig tc{.train = {.epochs = 2, .batch_size = 4, .lr = 1e-3, .patience = 0,
                                                   .log_every = 0}};
  const auto ref = reward::train_classifier(cpu, all.first(18), all.subspan(18), tc);
  const auto got = reward::train_classifier(emu, all.first(18), all.subspan(18), tc);
  compare_validations(got.report, ref.report);
  INFO("fitted temperature: emulated CUDA ", got.temperature, ", CPU ", ref.temperature);
  CHECK(std::abs(got.temperature - ref.temperature) <= std::max(std::abs(ref.temperature), 1.0) / 32);
}

TEST_CASE("backend parity: a PPO run checkpointed on the emulated CUDA backend resumes on cpu::Backend<float>") {
  EmuBackend backend;
  Pair p = policies(backend);
  const algo::PpoConfig cfg{.steps = 10, .generation = {.max_new_tokens = 6, .temperature = 0.7}, .ppo_epochs = 1,
                            .minibatch_size = 8, .lr = 1e-3};
  rlxf::test::TempDir dir("cross_backend_resume");
  const rlxf::train::TrainerConfig tc{.steps = 1, .prompts_per_step = 8, .run_dir = dir.path, .progress = false};
  // Step 1 on the emulated backend, sampling included: checkpoint at step 1.
  algo::BasicPpo<EmuPolicy> ppo_emu(p.emu, cfg);
  rlxf::train::Trainer<algo::BasicPpo<EmuPolicy>, model::BasicTextPolicy<EmuPolicy>, LetterAReward> first(
      ppo_emu, p.emu, LetterAReward{}, tc);
  CHECK(first.run(prompts) == 0);
  // On the CPU, from that checkpoint: first only the resume (the run is complete at step 1), so
  // the CPU policy holds exactly the master weights the emulated run saved; then step 2.
  algo::BasicPpo<CpuPolicy> ppo_cpu(p.cpu, cfg);
  using CpuTrainer = rlxf::train::Trainer<algo::BasicPpo<CpuPolicy>, model::BasicTextPolicy<CpuPolicy>, LetterAReward>;
  CpuTrainer resumed(ppo_cpu, p.cpu, LetterAReward{}, tc);
  CHECK(resumed.run(prompts) == 1);
  CHECK(ppo_cpu.steps_done() == 1);
  const auto cp = p.cpu.policy().parameters(true);
  const auto ep = p.emu.policy().parameters(true);
  for (std::size_t i = 0; i < cp.size(); ++i) {
    INFO(cp[i].name);
    CHECK(nn::values_of(*cp[i].param) == nn::values_of(*ep[i].param));
  }
  rlxf::train::TrainerConfig tc2 = tc;
  tc2.steps = 2;
  CpuTrainer second(ppo_cpu, p.cpu, LetterAReward{}, tc2);
  CHECK(second.run(prompts) == 1);
  CHECK(ppo_cpu.steps_done() == 2);
  std::ifstream metrics(dir.path / "metrics.jsonl");
  std::size_t lines = 0;
  for (std::string line; std::getline(metrics, line);) lines += !line.empty();
  CHECK(lines == 2);
}
