// custom_reward: plug your own reward model into rlxf. Anything with
//   std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string> answers) const
// models rlxf::RewardModel and drives every algorithm. Here the reward is the synthetic MONA
// oracle's true P(MET) of the answer, read from the paper's prompt (data/oracle.hpp).
#include <cstdio>
#include <string>
#include <vector>

#include <rlxf/rlxf.hpp>

using namespace rlxf;

struct OracleReward {
  data::MonaOracle oracle;
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string> answers) const {
    RLXF_REQUIRE(prompts.size() == answers.size(), "OracleReward: sizes differ");
    std::vector<double> out;
    for (std::size_t i = 0; i < prompts.size(); ++i) {
      const auto ctx = data::parse_policy_prompt(prompts[i]);
      if (!ctx)
        fail("OracleReward: prompt ", i, " is not the MONA policy prompt");
      out.push_back(oracle.p_met(ctx->country, ctx->arrangement_type, ctx->economic_descriptor, answers[i]));
    }
    return out;
  }
};
static_assert(RewardModel<OracleReward>);

struct NotAReward {  // score returns floats: not a RewardModel, a compile error if used as one
  std::vector<float> score(std::span<const std::string>, std::span<const std::string>) const { return {}; }
};
static_assert(!RewardModel<NotAReward>);

int main() {
  std::vector<std::string> prompts, corpus;
  for (const char* country : {"KENYA", "GHANA", "SERBIA", "JAMAICA"})
    prompts.push_back(data::policy_prompt({country, "ECF", "1.1. Revenue measures, excluding trade policy"}));
  for (const char* d : {"Publish a medium-term revenue strategy", "Enact a new value-added tax law",
                        "Prepare a new value-added tax law, as a first phase"})
    corpus.push_back(d);
  corpus.insert(corpus.end(), prompts.begin(), prompts.end());
  tokenize::Bpe bpe = tokenize::Bpe::train(corpus, {.vocab_size = 400});
  const model::DecoderConfig cfg{.vocab_size = bpe.vocab_size(), .max_positions = 128, .d_model = 32,
                                 .n_layers = 1, .n_heads = 2, .d_hidden = 64};
  Rng init(3);
  model::TextPolicy policy(std::move(bpe), model::Policy<float>(cfg, init));
  const OracleReward reward;
  algo::Ppo ppo(policy, {.steps = 10, .generation = {.max_new_tokens = 12, .temperature = 1.0}, .lr = 3e-3});
  Rng rng(4);
  for (std::size_t step = 0; step < 10; ++step) {
    double score = 0, kl = 0;
    for (const auto& [name, value] : ppo.step(policy, reward, prompts, rng)) {
      if (name == "objective/scores") score = value;
      if (name == "objective/kl") kl = value;
    }
    std::printf("step %zu: mean oracle reward %.3f, KL %.3f\n", step + 1, score, kl);
  }
}
