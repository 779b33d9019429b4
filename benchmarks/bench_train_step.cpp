// Training steps on the CPU, the "before" and "after" of the backend refactor (issue 12):
//   sft_step_gpt2_small  a GPT-2-small-shaped policy (12 layers, 768 wide, vocab 50257), one
//                        batch B = 4, T = 128: forward, token cross-entropy, backward, AdamW;
//                        /checkpointing:1 with activation checkpointing (Decoder::set_checkpointing)
//   ppo_step_main_job    one algo::Ppo step of the main job's policy shape (96 wide, 2 layers,
//                        4 heads, vocab ~300 here), 32 prompts x 32 sampled tokens, 4 PPO epochs
//                        of minibatch 16, against a toy reward (fraction of 'e' in the answer)
// Counters: tokens_per_s (trained tokens for SFT, sampled tokens for PPO); for SFT also
// activation_MiB, what the forward keeps for the backward (Policy::Cache::bytes, logits
// included) and block_activation_MiB, the part of it the blocks keep (what checkpointing cuts).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "train_step_workload.hpp"
#include "rlxf/algo/ppo.hpp"
#include "rlxf/algo/sft.hpp"
#include "rlxf/model/policy.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/tokenize/bpe.hpp"

namespace {

using namespace rlxf;

void sft_step_gpt2_small(benchmark::State& state) {
  constexpr std::size_t B = 4, T = 128, vocab = 50257;
  Rng rng(1);
  model::Policy<float> policy(model::DecoderConfig::gpt2_small(), rng);
  policy.decoder.set_checkpointing(state.range(0) != 0);
  model::SequenceBatch batch{zeros<std::int32_t, 2>({B, T}), zeros<std::uint8_t, 2>({B, T}), 1};
  for (auto& x : batch.tokens) x = static_cast<std::int32_t>(rng.next_below(vocab));
  batch.mask.fill(1);
  {
    typename model::Policy<float>::Cache cache;
    policy.forward(batch, 1.0, false, cache);
    state.counters["activation_MiB"] = static_cast<double>(cache.bytes()) / (1 << 20);
    state.counters["block_activation_MiB"] = static_cast<double>(cache.decoder.blocks.bytes()) / (1 << 20);
  }
  const auto params = policy.parameters(false);
  optim::AdamW<float> adamw(params, {.lr = 1e-4, .weight_decay = 0.0});
  for (auto _ : state) {
    adamw.zero_grad();
    const double loss = algo::sft_loss(policy, batch, true);
    adamw.step();
    benchmark::DoNotOptimize(loss);
  }
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(B * T * state.iterations()), benchmark::Counter::kIsRate);
}

void ppo_step_main_job(benchmark::State& state) {
  constexpr std::size_t prompts_per_step = 32, new_tokens = 32;
  const std::vector<std::string> corpus = bench::ppo_corpus();
  tokenize::Bpe bpe = tokenize::Bpe::train(corpus, {.vocab_size = 300});
  Rng init(1);
  const model::DecoderConfig cfg{.vocab_size = bpe.vocab_size(), .max_positions = 256, .d_model = 96,
                                 .n_layers = 2, .n_heads = 4, .d_hidden = 384};
  model::TextPolicy policy(std::move(bpe), model::Policy<float>(cfg, init));
  algo::Ppo ppo(policy, {.steps = 1000000, .generation = {.max_new_tokens = new_tokens, .temperature = 0.7},
                         .ppo_epochs = 4, .minibatch_size = 16, .lr = 1e-4});
  const std::vector<std::string> prompts(corpus.begin(), corpus.begin() + prompts_per_step);
  const bench::LetterReward rm;
  std::uint64_t step = 0;
  for (auto _ : state) {
    Rng rng(7, step++);
    const auto metrics = ppo.step(policy, rm, prompts, rng);
    benchmark::DoNotOptimize(metrics.data());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(
      static_cast<double>(prompts_per_step * new_tokens * state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

// Wall-clock time: the work runs on OpenMP threads, so the main thread's CPU time says little.
BENCHMARK(sft_step_gpt2_small)->ArgName("checkpointing")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(ppo_step_main_job)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();

BENCHMARK_MAIN();
