#pragma once
// Alignment evaluation: sample each policy's answers to the same held-out prompts, score them
// with the reward model (and, when the caller has one, a ground-truth oracle), measure the KL
// to the reference, and compare the tuned policy with its base and a random policy: Welch's
// t-test on the mean reward (the paper's Ave(R) against Ave(R_random), with a test the paper did
// not run), bootstrap 95% intervals, paired win rate, and a flag for reward over-optimisation
// (reward up, oracle not).
//
//   auto tuned = eval::evaluate_policy("PPO", policy, rm, prompts, gen, Rng(7), &reference);
//   auto base  = eval::evaluate_policy("SFT", sft_policy, rm, prompts, gen, Rng(7), &reference);
//   std::string md = eval::alignment_markdown({tuned, base, random}, prompts, {.tuned = 0, .base = 1, .random = 2});
#include <algorithm>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/eval/report.hpp"
#include "rlxf/eval/statistics.hpp"
#include "rlxf/model/text_policy.hpp"

namespace rlxf::eval {

struct PolicyEvaluation {
  std::string name;
  std::vector<std::string> answers;  // one per prompt
  std::vector<double> rewards;       // reward-model score of each answer
  std::vector<double> kl;            // sum over answer tokens of log pi - log pi_ref (k1); empty without a reference
  std::vector<double> oracle;        // ground truth (e.g. the synthetic oracle's P(MET)); empty if none
  std::vector<bool> ended;           // the answer produced EOS
};

// Samples one answer per prompt (batches of `batch`), scores it, and measures the KL to
// `reference` at the sampling temperature when one is given.
template <rlxf::Policy Pol, RewardModel R>
PolicyEvaluation evaluate_policy(std::string name, const model::BasicTextPolicy<Pol>& policy, const R& rm,
                                 std::span<const std::string> prompts, const model::GenerationConfig& gen, Rng rng,
                                 const std::type_identity_t<Pol>* reference = nullptr, std::size_t batch = 64) {
  RLXF_REQUIRE(!prompts.empty(), "evaluate_policy: no prompts");
  PolicyEvaluation out{std::move(name), {}, {}, {}, {}, {}};
  for (std::size_t lo = 0; lo < prompts.size(); lo += batch) {
    const auto chunk = prompts.subspan(lo, std::min(batch, prompts.size() - lo));
    const model::Rollout r = policy.sample(chunk, gen, rng);
    const std::vector<std::string> chunk_prompts(chunk.begin(), chunk.end());
    const std::vector<double> scores = rm.score(chunk_prompts, r.texts);
    out.answers.insert(out.answers.end(), r.texts.begin(), r.texts.end());
    out.rewards.insert(out.rewards.end(), scores.begin(), scores.end());
    out.ended.insert(out.ended.end(), r.ended.begin(), r.ended.end());
    if (reference) {
      typename Pol::Cache pc, rc;
      const auto lp = policy.policy().forward(r.batch, gen.temperature, false, pc);
      const auto lr = reference->forward(r.batch, gen.temperature, false, rc);
      const model::Mask mask = r.batch.response_mask();
      for (std::size_t b = 0; b < r.batch.rows(); ++b) {
        double kl = 0;
        for (std::size_t i = 0; i < r.batch.response_width(); ++i)
          if (mask(b, i))
            kl += static_cast<double>(lp.logprobs(b, i)) - static_cast<double>(lr.logprobs(b, i));
        out.kl.push_back(kl);
      }
    }
  }
  return out;
}

struct AlignmentRoles {
  std::size_t tuned = 0, base = 1;
  std::optional<std::size_t> random{};
  std::size_t sample_rows = 8;  // rows of the before/after table
  std::uint64_t seed = 0;       // bootstrap
};

// The comparison as numbers, for programs and tests.
struct AlignmentSummary {
  TTest reward_vs_base, reward_vs_random, oracle_vs_base;
  ConfidenceInterval reward_gain, oracle_gain;  // tuned - base, paired bootstrap
  WinRate win_rate;                             // tuned over base, by reward
  bool over_optimisation = false;               // reward gain significant, oracle gain not positive
};

inline AlignmentSummary summarize_alignment(const std::vector<PolicyEvaluation>& e, const AlignmentRoles& roles) {
  RLXF_REQUIRE(roles.tuned < e.size() && roles.base < e.size(), "alignment: role index out of range");
  const auto& tuned = e[roles.tuned];
  const auto& base = e[roles.base];
  AlignmentSummary s;
  s.reward_vs_base = welch_t_test(tuned.rewards, base.rewards, Alternative::greater);
  s.reward_gain = bootstrap_paired_mean_difference_ci(tuned.rewards, base.rewards, 0.95, 10000, roles.seed);
  s.win_rate = win_rate_interval(tuned.rewards, base.rewards);
  if (roles.random)
    s.reward_vs_random = welch_t_test(tuned.rewards, e.at(*roles.random).rewards, Alternative::greater);
  if (!tuned.oracle.empty() && !base.oracle.empty()) {
    s.oracle_vs_base = welch_t_test(tuned.oracle, base.oracle, Alternative::two_sided);
    s.oracle_gain = bootstrap_paired_mean_difference_ci(tuned.oracle, base.oracle, 0.95, 10000, roles.seed + 1);
    s.over_optimisation = s.reward_vs_base.p_value < 0.01 && s.oracle_gain.upper <= 0;
  }
  return s;
}

// The Markdown section: a table of every policy (reward, oracle, KL, EOS rate with 95%
// intervals), the tests, the over-optimisation verdict, and answers side by side.
inline std::string alignment_markdown(const std::vector<PolicyEvaluation>& e, std::span<const std::string> prompts,
                                      const AlignmentRoles& roles) {
  const AlignmentSummary s = summarize_alignment(e, roles);
  std::vector<std::vector<std::string>> rows;
  for (std::size_t k = 0; k < e.size(); ++k) {
    const auto& p = e[k];
    const double eos = static_cast<double>(std::count(p.ended.begin(), p.ended.end(), true)) /
                       static_cast<double>(std::max<std::size_t>(1, p.ended.size()));
    const auto mean_ci = [&](const std::vector<double>& x) {
      const ConfidenceInterval ci = bootstrap_mean_ci(x, 0.95, 10000, roles.seed);
      return format_number(ci.estimate) + " " + format_interval(ci);
    };
    rows.push_back({p.name, mean_ci(p.rewards), p.oracle.empty() ? "-" : mean_ci(p.oracle),
                    p.kl.empty() ? "-" : format_number(summarize(p.kl).mean), format_number(eos)});
  }
  const auto& tuned = e[roles.tuned];
  const auto& base = e[roles.base];
  std::string md = markdown_table({"policy", "mean reward [95% CI]", "mean oracle P(MET) [95% CI]", "KL to reference (nats/answer)",
                       "EOS rate"},
                      rows);
  md += "\n";
  md += "- Reward, " + tuned.name + " vs " + base.name + ": difference " + format_number(s.reward_vs_base.mean_difference) +
        " (paired bootstrap 95% CI " + format_interval(s.reward_gain) + "), Welch t = " +
        format_number(s.reward_vs_base.statistic) + ", df = " + format_number(s.reward_vs_base.df) +
        ", one-sided p = " + format_p_value(s.reward_vs_base.p_value) + ".\n";
  if (roles.random)
    md += "- Reward, " + tuned.name + " vs " + e[*roles.random].name + ": difference " +
          format_number(s.reward_vs_random.mean_difference) + ", Welch one-sided p = " +
          format_p_value(s.reward_vs_random.p_value) + ".\n";
  md += "- Win rate of " + tuned.name + " over " + base.name + " by reward (ties 1/2): " +
        format_number(s.win_rate.rate) + " (Wilson 95% CI " + format_interval(s.win_rate.ci) + ").\n";
  if (!tuned.oracle.empty() && !base.oracle.empty()) {
    md += "- Oracle P(MET), " + tuned.name + " vs " + base.name + ": difference " +
          format_number(s.oracle_vs_base.mean_difference) + " (paired bootstrap 95% CI " +
          format_interval(s.oracle_gain) + "), Welch two-sided p = " + format_p_value(s.oracle_vs_base.p_value) + ".\n";
    md += s.over_optimisation
              ? "- **Reward over-optimisation:** the reward rose significantly but the oracle's true P(MET) did not.\n"
              : "- No reward over-optimisation flagged (the flag needs p < 0.01 for the reward gain and an oracle "
                "gain whose 95% interval lies at or below 0).\n";
  }
  std::vector<std::vector<std::string>> samples;
  const std::size_t shown = std::min(roles.sample_rows, prompts.size());
  for (const PolicyEvaluation* p : {&base, &tuned})
    RLXF_REQUIRE(p->answers.size() >= shown && p->rewards.size() >= shown, "alignment_markdown: '", p->name,
                 "' has ", p->answers.size(), " answers and ", p->rewards.size(), " rewards for ", shown,
                 " sample rows");
  for (std::size_t i = 0; i < shown; ++i)
    samples.push_back({prompts[i], base.answers[i], format_number(base.rewards[i], 3), tuned.answers[i],
                       format_number(tuned.rewards[i], 3)});
  md += "\nSample answers to the same prompts (before/after):\n\n";
  md += markdown_table({"prompt", base.name + " answer", "reward", tuned.name + " answer", "reward"}, samples);
  return md;
}

}  // namespace rlxf::eval
