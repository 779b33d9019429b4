// swap_algorithms: the algorithm is a template parameter. The same policy, reward model and
// Trainer run PPO, then (one word changed) DPO. A toy reward (the share of the letter 'e' in
// the answer) keeps the example self-contained and fast.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <rlxf/rlxf.hpp>

using namespace rlxf;

struct LetterReward {  // models rlxf::RewardModel
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string> answers) const {
    RLXF_REQUIRE(prompts.size() == answers.size(), "LetterReward: sizes differ");
    std::vector<double> out;
    for (const auto& a : answers)
      out.push_back(a.empty() ? 0.0 : static_cast<double>(std::count(a.begin(), a.end(), 'e')) / static_cast<double>(a.size()));
    return out;
  }
};

// A tiny policy, the same for every algorithm.
model::TextPolicy make_policy() {
  const std::vector<std::string> corpus{"prepare the new law", "publish the review", "set up a unit"};
  tokenize::Bpe bpe = tokenize::Bpe::train(corpus, {.vocab_size = 300});
  const model::DecoderConfig cfg{.vocab_size = bpe.vocab_size(), .max_positions = 64, .d_model = 32,
                                 .n_layers = 1, .n_heads = 2, .d_hidden = 64};
  Rng init(1);
  return model::TextPolicy(std::move(bpe), model::Policy<float>(cfg, init));
}

template <class Algo, class Config>
void fine_tune(const char* name, const Config& cfg, const std::vector<std::string>& prompts) {
  model::TextPolicy policy = make_policy();
  const LetterReward reward;
  Algo algo(policy, cfg);
  const auto dir = std::filesystem::temp_directory_path() / ("rlxf_swap_" + std::string(name));
  std::filesystem::remove_all(dir);
  train::TrainerConfig tcfg;
  tcfg.steps = 20;
  tcfg.prompts_per_step = 8;
  tcfg.run_dir = dir;
  tcfg.progress = false;
  train::Trainer<Algo, model::TextPolicy, LetterReward> trainer(algo, policy, reward, tcfg);
  double first = -1, last = 0;
  trainer.on_step([&](std::size_t, algo::StepMetrics& m) {
    for (const auto& [key, value] : m)
      if (key == "objective/scores")
        (first < 0 ? first : last) = value;
  });
  trainer.run(prompts);
  std::printf("%s: mean reward of the sampled answers %.3f at the first step, %.3f at the last\n", name, first, last);
  std::filesystem::remove_all(dir);
}

int main() {
  const std::vector<std::string> prompts{"write a condition:", "propose a measure:", "state a benchmark:"};
  const model::GenerationConfig gen{.max_new_tokens = 12, .temperature = 1.0};
  // Trainer<algo::Ppo, ...> and Trainer<algo::Dpo, ...>: the algorithm is the only difference.
  fine_tune<algo::Ppo>("PPO", algo::PpoConfig{.steps = 20, .generation = gen, .lr = 3e-3}, prompts);
  fine_tune<algo::Dpo>("DPO", algo::DpoConfig{.lr = 3e-3, .steps = 20, .generation = gen}, prompts);
}
