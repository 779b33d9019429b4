#pragma once
// The main job's stages 2 to 5 (SFT, reward model, fine-tuning, evaluation and report), written
// once over the compute backend: rlxf_mona.cpp runs them on cpu::Backend<float> and on the
// emulated CUDA backend (rlxf_mona_emulator.cpp), rlxf_mona_gpu.cu (compiled by nvcc) on
// cuda::Backend<cuda::Gpu>. Stage 1 (data, splits, tokenizer) is the same host work for all of
// them and stays in rlxf_mona.cpp; so does everything that must happen before anything is
// written (the command line, the configuration, claiming the GPU).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <rlxf/rlxf.hpp>

#include "rlxf_mona_config.hpp"
#if defined(RLXF_MONA_WITH_CUDA)
#include <rlxf/cuda/gpu.hpp>
#endif

namespace rlxf_mona {

namespace fs = std::filesystem;
using namespace rlxf;

// What stage 1 made, and what the stages after it need.
struct Job {
  Config cfg;
  std::string algorithm;  // ppo, dpo, rs, grpo or rloo
  fs::path run;           // the run folder, locked by main
  const data::MonaTable* table = nullptr;
  data::Split outer, inner;  // 80/20 rows, then 90/10 of the 80 for the reward model
  const tokenize::Bpe* bpe = nullptr;
  std::chrono::steady_clock::time_point t0;
  std::string* activity = nullptr;  // what the job is doing, for errors that do not say
};

// The policy prompt (the paper's template) of row `i` of the table.
inline std::string prompt_of(const data::MonaTable& table, std::size_t i) {
  return data::policy_prompt(data::condition_context(table.records[i]));
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

inline model::DecoderConfig policy_config(const Config& c, std::size_t vocab) {
  return {.vocab_size = vocab,
          .max_positions = policy_max_positions,
          .d_model = c.policy_d_model,
          .n_layers = c.policy_layers,
          .n_heads = c.policy_heads,
          .d_hidden = 4 * c.policy_d_model};
}

inline void print_progress(const char* what, const reward::TrainProgress& p) {
  if (std::isnan(p.val_loss))
    return;
  std::printf("  %s step %zu/%zu: train loss %.4f, validation loss %.4f [%.0f s]\n", what, p.step, p.total_steps,
              p.train_loss, p.val_loss, p.seconds);
  std::fflush(stdout);
}

// The metric `name` of every line of metrics.jsonl, against its step.
inline eval::Series series_of(const fs::path& log, const std::string& name, const std::string& label) {
  eval::Series s{label, {}, {}, {}};
  std::ifstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains(name) || !j[name].is_number())
      continue;
    s.x.push_back(j["step"].get<double>());
    s.y.push_back(j[name].get<double>());
  }
  return s;
}

// Stages 2 to 5 with every model on backend B.
template <class B>
void run_stages(const Job& job, nn::BackendRef<B> backend = {}) {
  using PolicyModel = model::BasicPolicy<B>;
  using TextPolicy = model::BasicTextPolicy<PolicyModel>;
  using RewardModel = reward::BasicMonaRewardModel<B>;
  const Config& cfg = job.cfg;
  const fs::path& run = job.run;
  const data::MonaTable& table = *job.table;
  const std::string& algorithm = job.algorithm;
  std::string& activity = *job.activity;

  // 2. SFT policy.
  activity = "supervised fine-tuning (" + (run / "sft").string() + ")";
  const model::DecoderConfig dcfg = policy_config(cfg, job.bpe->vocab_size());
  Rng init(cfg.seed, 11);
  TextPolicy policy(*job.bpe, PolicyModel(dcfg, init, backend), max_prompt_tokens);
  const fs::path sft_weights = run / "sft" / "policy.safetensors";
  if (fs::exists(sft_weights)) {
    train::load_parameters(sft_weights, policy.policy().parameters(true));
    std::printf("SFT policy: loaded %s\n", sft_weights.c_str());
  } else {
    std::vector<std::string> prompts, answers;
    std::vector<std::size_t> rows(job.outer.train.begin(), job.outer.train.end());
    Rng shuffle(cfg.seed, 12);
    for (std::size_t i = rows.size(); i-- > 1;)
      std::swap(rows[i], rows[shuffle.next_below(static_cast<std::uint32_t>(i + 1))]);
    for (std::size_t i : rows) {
      prompts.push_back(prompt_of(table, i));
      answers.push_back(data::collapse_space(table.records[i].description));
    }
    const auto report = algo::sft(policy, prompts, answers,
                                  {.train = {.epochs = cfg.sft_epochs, .lr = cfg.sft_lr, .eval_every = 100,
                                             .patience = 0, .seed = cfg.seed}},
                                  [](const reward::TrainProgress& p) { print_progress("SFT", p); });
    fs::create_directories(run / "sft");
    train::save_parameters(sft_weights, policy.policy().parameters(true));
    std::printf("SFT policy: %zu steps on %zu pairs in %.0f s\n", report.steps, prompts.size(), report.seconds);
  }
  const PolicyModel sft_snapshot = policy.policy();

  // 3. Reward model.
  activity = "training the reward model (" + (run / "reward_model").string() + ")";
  RewardModel rm = [&] {
    if (fs::exists(run / "reward_model" / "reward.json"))
      return RewardModel::load(run / "reward_model", backend);
    auto [m, fit] = reward::train_mona_reward_model(
        table, job.inner.train, job.inner.test, *job.bpe,
        {.d_model = cfg.rm_d_model,
         .layers = cfg.rm_layers,
         .heads = cfg.rm_heads,
         .classifier = {.train = {.epochs = cfg.rm_epochs, .lr = cfg.rm_lr, .seed = cfg.seed}},
         .seed = cfg.seed},
        [](const reward::TrainProgress& p) { print_progress("reward model", p); }, backend);
    m.save(run / "reward_model");
    return std::move(m);
  }();
  const auto test_examples = reward::mona_examples(rm, table, job.outer.test);
  std::vector<std::uint8_t> test_labels;
  for (const auto& e : test_examples)
    test_labels.push_back(e.label);
  const auto rm_metrics = reward::binary_metrics(
      reward::met_probabilities(reward::met_logits(rm.classifier(), test_examples), rm.settings().temperature),
      test_labels);
  std::printf("reward model, held-out rows: %s [%.0f s]\n", reward::summary_line(rm_metrics).c_str(),
              seconds_since(job.t0));

  // Prompt sets: the distinct contexts of the training rows, and of the held-out rows.
  const auto distinct_prompts = [&](std::span<const std::size_t> rows, std::uint64_t stream) {
    std::set<std::string> seen;
    std::vector<std::string> out;
    for (std::size_t i : rows)
      if (seen.insert(prompt_of(table, i)).second)
        out.push_back(prompt_of(table, i));
    Rng shuffle(cfg.seed, stream);
    for (std::size_t i = out.size(); i-- > 1;)
      std::swap(out[i], out[shuffle.next_below(static_cast<std::uint32_t>(i + 1))]);
    return out;
  };
  const std::vector<std::string> train_prompts = distinct_prompts(job.outer.train, 13);
  std::vector<std::string> eval_prompts = distinct_prompts(job.outer.test, 14);
  eval_prompts.resize(std::min(eval_prompts.size(), cfg.eval_prompts));
  const std::span<const std::string> monitor_prompts(eval_prompts.data(),
                                                     std::min(eval_prompts.size(), cfg.eval_during_training));
  const data::MonaOracle oracle;
  const auto oracle_scores = [&](std::span<const std::string> prompts, const std::vector<std::string>& answers) {
    std::vector<double> out;
    for (std::size_t i = 0; i < answers.size(); ++i) {
      const auto ctx = *data::parse_policy_prompt(prompts[i]);
      out.push_back(oracle.p_met(ctx.country, ctx.arrangement_type, ctx.economic_descriptor, answers[i]));
    }
    return out;
  };
  const model::GenerationConfig gen{.max_new_tokens = cfg.max_new_tokens, .temperature = cfg.temperature};

  activity = "fine-tuning (" + (run / algorithm).string() + ")";
  // 4. Fine-tuning: the algorithm is a template parameter; this switch picks the instantiation.
  // Every algorithm sees about prompts_per_step * (its samples per prompt) = 32 answers a step.
  const auto fine_tune = [&]<class Algo>(Algo& algo, std::size_t samples_per_prompt) {
    const std::size_t per_step = std::max<std::size_t>(1, cfg.prompts_per_step / samples_per_prompt);
    std::printf("fine-tuning (%s): %zu steps of %zu prompts x %zu samples (%zu distinct training prompts)\n",
                algorithm.c_str(), cfg.steps, per_step, samples_per_prompt, train_prompts.size());
    train::Trainer<Algo, TextPolicy, RewardModel> trainer(
        algo, policy, rm,
        {.steps = cfg.steps, .prompts_per_step = per_step, .eval_every = cfg.eval_every,
         .checkpoint_every = cfg.checkpoint_every, .run_dir = run / algorithm, .seed = cfg.seed});
    if (!monitor_prompts.empty())  // eval_during_training = 0: no evaluation while training
      trainer.on_evaluate([&](std::size_t, algo::StepMetrics& m) {
        const auto e =
            eval::evaluate_policy("tuned", policy, rm, monitor_prompts, gen, Rng(cfg.seed, 15), &sft_snapshot);
        m.emplace_back("eval/reward", eval::summarize(e.rewards).mean);
        m.emplace_back("eval/oracle", eval::summarize(oracle_scores(monitor_prompts, e.answers)).mean);
        m.emplace_back("eval/kl", eval::summarize(e.kl).mean);
      });
    const std::size_t resumed = trainer.run(train_prompts);
    if (resumed > 0)
      std::printf("resumed from the checkpoint at step %zu\n", resumed);
  };
  const model::GenerationConfig sample_gen{.max_new_tokens = cfg.max_new_tokens, .temperature = 1.0};
  double final_beta = std::numeric_limits<double>::quiet_NaN();
  if (algorithm == "ppo") {
    algo::BasicPpo<PolicyModel> ppo(
        policy, {.steps = cfg.steps,
                 .generation = gen,
                 .ppo_epochs = cfg.ppo_epochs,
                 .minibatch_size = cfg.minibatch_size,
                 .lr = cfg.lr,
                 .adaptive_kl = cfg.adaptive_kl,
                 .kl_coef = cfg.kl_coef,
                 .adaptive = {.init = cfg.kl_coef, .target = cfg.kl_target, .horizon = cfg.kl_horizon}});
    fine_tune(ppo, 1);
    final_beta = ppo.beta();
  } else if (algorithm == "dpo") {
    algo::BasicDpo<PolicyModel> dpo(
        policy, {.lr = cfg.lr, .steps = cfg.steps, .minibatch_size = cfg.minibatch_size, .generation = sample_gen});
    fine_tune(dpo, 2);
  } else if (algorithm == "rs") {
    algo::BasicRejectionSampling<PolicyModel> rs(policy, {.samples_per_prompt = 4, .generation = sample_gen,
                                                          .lr = cfg.lr, .minibatch_size = cfg.minibatch_size,
                                                          .steps = cfg.steps});
    fine_tune(rs, 4);
  } else if (algorithm == "grpo") {
    algo::BasicGrpo<PolicyModel> grpo(policy,
                                      {.steps = cfg.steps, .group_size = 4, .generation = sample_gen, .lr = cfg.lr});
    fine_tune(grpo, 4);
  } else {
    algo::BasicRloo<PolicyModel> rloo(policy, {.steps = cfg.steps, .k = 2, .generation = gen, .lr = cfg.lr});
    fine_tune(rloo, 2);
  }
  std::printf("fine-tuning done [%.0f s]\n", seconds_since(job.t0));

  // 5. Evaluation and report.
  activity = "evaluating and writing the report in " + run.string();
  TextPolicy base(*job.bpe, sft_snapshot, max_prompt_tokens);
  Rng random_init(cfg.seed, 16);
  TextPolicy random(*job.bpe, PolicyModel(dcfg, random_init, backend), max_prompt_tokens);
  std::vector<eval::PolicyEvaluation> evals;
  const std::map<std::string, std::string> names{
      {"ppo", "PPO"}, {"dpo", "DPO"}, {"rs", "rejection sampling"}, {"grpo", "GRPO"}, {"rloo", "RLOO"}};
  const std::string tuned_name = names.at(algorithm);
  for (auto [name, p] : {std::pair{tuned_name, &policy}, std::pair{std::string("SFT"), &base},
                         std::pair{std::string("random"), &random}}) {
    auto e = eval::evaluate_policy(name, *p, rm, eval_prompts, gen, Rng(cfg.seed, 17), &sft_snapshot);
    e.oracle = oracle_scores(eval_prompts, e.answers);
    evals.push_back(std::move(e));
  }
  const eval::AlignmentRoles roles{.tuned = 0, .base = 1, .random = 2, .seed = cfg.seed};
  const eval::AlignmentSummary summary = eval::summarize_alignment(evals, roles);

  const fs::path log = run / algorithm / "metrics.jsonl";
  eval::write_text_file(run / "reward.svg",
                        eval::svg_line_plot({.title = "Reward during fine-tuning",
                                             .x_label = "step",
                                             .y_label = "P(MET) by the reward model",
                                             .series = {series_of(log, "objective/scores", "rollout reward"),
                                                        series_of(log, "eval/reward", "held-out reward")}}));
  eval::write_text_file(run / "kl.svg",
                        eval::svg_line_plot({.title = "KL to the SFT reference",
                                             .x_label = "step",
                                             .y_label = "nats per answer",
                                             .series = {series_of(log, "objective/kl", "rollout KL"),
                                                        series_of(log, "eval/kl", "held-out KL")},
                                             .y_min = 0.0}));
  eval::write_text_file(run / "oracle.svg",
                        eval::svg_line_plot({.title = "True P(MET) by the synthetic oracle",
                                             .x_label = "step",
                                             .y_label = "oracle P(MET), held-out prompts",
                                             .series = {series_of(log, "eval/oracle", "tuned policy")}}));
  std::string md = "# RLXF on MONA: " + tuned_name + " run\n\n";
  md += "Data `" + cfg.data + "`: " + table.report.summary() + "\n\n";
  md += "## Reward model (held-out 20%)\n\n" + reward::to_markdown(rm_metrics) + "\n";
  md += "## Alignment on " + std::to_string(eval_prompts.size()) + " held-out prompts\n\n";
  md += "Answers sampled at temperature " + eval::format_number(cfg.temperature) +
        "; KL is the summed log-ratio to the SFT policy.\n\n";
  md += eval::alignment_markdown(evals, eval_prompts, roles);
  md += "\n## Fine-tuning\n\n![reward](reward.svg)\n\n![KL](kl.svg)\n\n![oracle](oracle.svg)\n\n";
  md += "Configuration: `config.json`; metrics per step: `" + algorithm + "/metrics.jsonl`.\n";
  eval::write_text_file(run / "report.md", md);

  nlohmann::json result{{"reward", {{"tuned", eval::summarize(evals[0].rewards).mean},
                                    {"sft", eval::summarize(evals[1].rewards).mean},
                                    {"random", eval::summarize(evals[2].rewards).mean},
                                    {"p_value_vs_sft", summary.reward_vs_base.p_value}}},
                        {"oracle", {{"tuned", eval::summarize(evals[0].oracle).mean},
                                    {"sft", eval::summarize(evals[1].oracle).mean},
                                    {"random", eval::summarize(evals[2].oracle).mean}}},
                        {"kl_to_sft", eval::summarize(evals[0].kl).mean},
                        {"kl_target", cfg.kl_target},
                        {"beta", std::isnan(final_beta) ? nlohmann::json(nullptr) : nlohmann::json(final_beta)},
                        {"over_optimisation", summary.over_optimisation}};
  eval::write_text_file(run / "result.json", result.dump(2) + "\n");
  std::printf("\n%s\nwrote %s [total %.0f s]\n", result.dump(2).c_str(), (run / "report.md").c_str(),
              seconds_since(job.t0));
}

// The stages on the emulated CUDA backend (rlxf_mona_emulator.cpp) and on a GPU
// (rlxf_mona_gpu.cu, only in a build with CUDA).
void run_on_emulator(const Job& job);
#if defined(RLXF_MONA_WITH_CUDA)
void run_on_gpu(const Job& job, cuda::Backend<cuda::Gpu>& gpu);
#endif

}  // namespace rlxf_mona
