// A GPT-2-small-shaped decoder (12 layers, 768 wide, 12 heads, vocab 50257) on the CPU:
// forward tokens/s for a (1, 128) batch, and generation tokens/s with the KV cache against
// recomputing the whole sequence for every new token (greedy, 16-token prompt, 16 new tokens).
#include <benchmark/benchmark.h>

#include "rlxf/model/generation.hpp"

namespace {

using rlxf::model::Decoder;
using rlxf::model::DecoderConfig;

const Decoder<float>& gpt2_small() {
  static const Decoder<float> model = [] {
    rlxf::Rng rng(1);
    return Decoder<float>(DecoderConfig::gpt2_small(), rng);
  }();
  return model;
}

rlxf::nn::Tokens random_tokens(std::size_t b, std::size_t t) {
  auto ids = rlxf::zeros<std::int32_t, 2>({b, t});
  rlxf::Rng rng(2);
  for (auto& x : ids) x = static_cast<std::int32_t>(rng.next_below(50257));
  return ids;
}

void forward(benchmark::State& state) {
  const auto& model = gpt2_small();
  const auto t = static_cast<std::size_t>(state.range(0));
  const auto ids = random_tokens(1, t);
  for (auto _ : state) {
    Decoder<float>::Cache cache;
    auto logits = model.forward(ids, nullptr, cache);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(t * state.iterations()), benchmark::Counter::kIsRate);
}

constexpr std::size_t prompt_len = 16, new_tokens = 16;

void generate_kv_cache(benchmark::State& state) {
  const auto& model = gpt2_small();
  const auto ids = random_tokens(1, prompt_len);
  auto mask = rlxf::zeros<std::uint8_t, 2>({1, prompt_len});
  mask.fill(1);
  for (auto _ : state) {
    rlxf::Rng rng(3);
    auto g = rlxf::model::generate(model, ids, mask, {.max_new_tokens = new_tokens, .greedy = true}, rng);
    benchmark::DoNotOptimize(g.tokens.data());
  }
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(new_tokens * state.iterations()), benchmark::Counter::kIsRate);
}

void generate_recompute(benchmark::State& state) {
  const auto& model = gpt2_small();
  for (auto _ : state) {
    auto ids = random_tokens(1, prompt_len);
    for (std::size_t step = 0; step < new_tokens; ++step) {
      Decoder<float>::Cache cache;
      const auto logits = model.forward(ids, nullptr, cache);
      const std::size_t t = ids.shape()[1];
      std::size_t best = 0;
      for (std::size_t v = 1; v < 50257; ++v)
        if (logits(0, t - 1, v) > logits(0, t - 1, best)) best = v;
      auto grown = rlxf::zeros<std::int32_t, 2>({1, t + 1});
      for (std::size_t j = 0; j < t; ++j) grown(0, j) = ids(0, j);
      grown(0, t) = static_cast<std::int32_t>(best);
      ids = grown;
    }
    benchmark::DoNotOptimize(ids.data());
  }
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(new_tokens * state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(forward)->Arg(16)->Arg(32)->Arg(128)->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(generate_kv_cache)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(generate_recompute)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
