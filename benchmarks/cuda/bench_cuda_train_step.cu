// Training steps on the GPU, cuda::Backend<cuda::Gpu>: what benchmarks/bench_train_step.cpp
// times on the CPU, through the same library code (the models, AdamW on the f32 master weights
// of the parameter arena, the algorithms over rlxf::Policy):
//   sft_step_gpt2_small/checkpointing:{0,1}  a GPT-2-small-shaped policy, B = 4, T = 128:
//                                             forward, token log-prob loss, backward, AdamW
//   ppo_step_gpt2_small                       one PPO step of the same policy: 16 prompts x 32
//                                             sampled tokens, old / reference log-probs and
//                                             values, one epoch of one minibatch of 16
// Wall-clock time per step, the stream synchronised at its end; one untimed step first (the
// memory pool fills, cuBLAS-free kernels need no other warm-up). Without a usable GPU the
// binary exits with status 2 (gpu_benchmark.hpp). This TU compiles the kernels the backend
// launches itself (as tests/cuda/kernels/backend.cu does), so it links no kernel objects.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gpu_benchmark.hpp"
#include "../train_step_workload.hpp"
#include "rlxf/algo/ppo.hpp"
#include "rlxf/algo/sft.hpp"
#include "rlxf/cuda/gpu.hpp"
#include "rlxf/model/policy.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/tokenize/bpe.hpp"

namespace {

using namespace rlxf;
using GpuBackend = cuda::Backend<cuda::Gpu>;
using GpuPolicy = model::BasicPolicy<GpuBackend>;

std::unique_ptr<GpuBackend> gpu;

void sft_step_gpt2_small(benchmark::State& state) {
  constexpr std::size_t B = 4, T = 128, vocab = 50257;
  Rng rng(1);
  GpuPolicy policy(model::DecoderConfig::gpt2_small(), rng, nn::BackendRef<GpuBackend>(*gpu));
  policy.decoder.set_checkpointing(state.range(0) != 0);
  model::SequenceBatch batch{zeros<std::int32_t, 2>({B, T}), zeros<std::uint8_t, 2>({B, T}), 1};
  for (auto& x : batch.tokens) x = static_cast<std::int32_t>(rng.next_below(vocab));
  batch.mask.fill(1);
  const auto params = policy.parameters(false);
  optim::AdamWFor<decltype(params)> adamw(params, {.lr = 1e-4, .weight_decay = 0.0});
  const auto step = [&] {
    adamw.zero_grad();
    const double loss = algo::sft_loss(policy, batch, true);
    adamw.step();
    gpu->synchronize();
    return loss;
  };
  step();
  for (auto _ : state) benchmark::DoNotOptimize(step());
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(B * T * state.iterations()), benchmark::Counter::kIsRate);
}

void ppo_step_gpt2_small(benchmark::State& state) {
  constexpr std::size_t prompts_per_step = 16, new_tokens = 32;
  const std::vector<std::string> corpus = bench::ppo_corpus();
  tokenize::Bpe bpe = tokenize::Bpe::train(corpus, {.vocab_size = 300});
  Rng init(1);
  model::BasicTextPolicy<GpuPolicy> policy(
      std::move(bpe), GpuPolicy(model::DecoderConfig::gpt2_small(), init, nn::BackendRef<GpuBackend>(*gpu)));
  algo::BasicPpo<GpuPolicy> ppo(policy, {.steps = 1000000, .generation = {.max_new_tokens = new_tokens, .temperature = 0.7},
                                         .ppo_epochs = 1, .minibatch_size = 16, .lr = 1e-5});
  const std::vector<std::string> prompts(corpus.begin(), corpus.begin() + prompts_per_step);
  const bench::LetterReward rm;
  std::uint64_t seed = 0;
  const auto step = [&] {
    Rng rng(7, seed++);
    const auto metrics = ppo.step(policy, rm, prompts, rng);
    gpu->synchronize();
    return metrics.size();
  };
  step();
  for (auto _ : state) benchmark::DoNotOptimize(step());
  state.counters["tokens_per_s"] = benchmark::Counter(
      static_cast<double>(prompts_per_step * new_tokens * state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

int main(int argc, char** argv) {
  rlxf::bench::Hooks hooks;
  hooks.register_benchmarks = [] {
    benchmark::RegisterBenchmark("sft_step_gpt2_small", sft_step_gpt2_small)
        ->ArgName("checkpointing")
        ->Arg(0)
        ->Arg(1)
        ->Unit(benchmark::kMillisecond)
        ->Iterations(5)
        ->UseRealTime();
    benchmark::RegisterBenchmark("ppo_step_gpt2_small", ppo_step_gpt2_small)
        ->Unit(benchmark::kMillisecond)
        ->Iterations(3)
        ->UseRealTime();
  };
  hooks.start = [](rlxf::cuda::DeviceProperties) { gpu = std::make_unique<GpuBackend>(); };
  hooks.stop = [] { gpu.reset(); };
  return rlxf::bench::run_gpu_benchmarks(argc, argv, "bench_cuda_train_step", hooks);
}
