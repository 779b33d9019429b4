#pragma once
// What the CPU and GPU training-step benchmarks (bench_train_step.cpp,
// cuda/bench_cuda_train_step.cu) share: the PPO step's prompt corpus and its toy reward.
#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace rlxf::bench {

// 64 prompts in the main job's style; the tokenizer is trained on them.
inline std::vector<std::string> ppo_corpus() {
  std::vector<std::string> corpus;
  for (int i = 0; i < 64; ++i)
    corpus.push_back("Given the economic indicators of country " + std::to_string(i) +
                     ", propose a condition: submit the budget to parliament and publish the audit");
  return corpus;
}

// Reward: the fraction of the answer's bytes that are 'e' (0 when empty).
struct LetterReward {
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string> answers) const {
    std::vector<double> out;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const std::string& a = answers[i];
      out.push_back(a.empty() ? 0.0 : static_cast<double>(std::count(a.begin(), a.end(), 'e')) / static_cast<double>(a.size()));
    }
    return out;
  }
};

}  // namespace rlxf::bench
