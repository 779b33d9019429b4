// rlxf_mona: the whole RLXF pipeline of the paper on a MONA export, on 2 CPU cores.
//   1. split the labelled rows 80/20 (seeded); train a byte-level BPE tokenizer on the training side;
//   2. SFT a small GPT-2-style policy on (paper prompt, historical condition description);
//   3. train the MET / Non-MET reward model and print its held-out metrics;
//   4. fine-tune the policy against P(MET) with the chosen algorithm (PPO by default) through
//      train::Trainer, logging metrics.jsonl and checkpointing;
//   5. evaluate tuned vs SFT vs a random policy on held-out prompts (reward, the synthetic
//      oracle's true P(MET), KL, tests) and write report.md with SVG plots.
// Every stage's result is kept in the run folder; re-running resumes where the last run stopped
// (a killed fine-tuning continues from its last checkpoint and ends with the same numbers).
//
//   rlxf_mona [--config file.json] [--run runs/rlxf_mona] [--algorithm ppo] [--help]
// The JSON config overrides any field of Config below (unknown keys are an error); --help lists
// them with their defaults and allowed ranges. The whole configuration is checked, the data
// file included, before anything is written; the run folder is locked against a second process
// and records the data file's identity, so a changed CSV is refused. Exit status: 0 done,
// 2 a usage or configuration error, 1 any other error.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <rlxf/rlxf.hpp>

#include "rlxf_mona_config.hpp"
#if defined(RLXF_MONA_WITH_CUDA)
#include <rlxf/cuda/gpu.hpp>
#endif

using namespace rlxf;
using namespace rlxf_mona;
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

model::DecoderConfig policy_config(const Config& c, std::size_t vocab) {
  return {.vocab_size = vocab,
          .max_positions = policy_max_positions,
          .d_model = c.policy_d_model,
          .n_layers = c.policy_layers,
          .n_heads = c.policy_heads,
          .d_hidden = 4 * c.policy_d_model};
}

void print_progress(const char* what, const reward::TrainProgress& p) {
  if (std::isnan(p.val_loss))
    return;
  std::printf("  %s step %zu/%zu: train loss %.4f, validation loss %.4f [%.0f s]\n", what, p.step, p.total_steps,
              p.train_loss, p.val_loss, p.seconds);
  std::fflush(stdout);
}

// The metric `name` of every line of metrics.jsonl, against its step.
eval::Series series_of(const fs::path& log, const std::string& name, const std::string& label) {
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

// What the job is doing, for errors that do not name their file themselves (std::bad_alloc,
// a filesystem error from the standard library).
std::string activity = "reading the command line";

}  // namespace

int main(int argc, char** argv) try {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress shows up in logs as it happens
  const auto t0 = std::chrono::steady_clock::now();
  fs::path run = "runs/rlxf_mona";
  std::string algorithm = "ppo";
  std::string device = "cpu";
  std::optional<fs::path> config_file;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage().c_str(), stdout);
      return 0;
    }
    if (arg != "--run" && arg != "--algorithm" && arg != "--config" && arg != "--device")
      usage_error("unknown option '", arg, "' (expected --config, --run, --algorithm, --device or --help)");
    if (i + 1 >= argc) usage_error("option ", arg, " needs a value (see --help)");
    const std::string v = argv[++i];
    if (v.empty()) usage_error("option ", arg, " needs a non-empty value");
    if (arg == "--run") run = v;
    else if (arg == "--algorithm") algorithm = v;
    else if (arg == "--device") device = v;
    else config_file = v;
  }
  if (algorithm != "ppo" && algorithm != "dpo" && algorithm != "rs" && algorithm != "grpo" && algorithm != "rloo")
    usage_error("--algorithm must be ppo, dpo, rs, grpo or rloo, got '", algorithm, "'");
  if (device != "cpu" && device != "cuda") usage_error("--device must be cpu or cuda, got '", printable(device), "'");
  // The GPU is claimed before anything else, so a machine without one stops here, having
  // written nothing.
  if (device == "cuda") {
    activity = "--device cuda";
#if defined(RLXF_MONA_WITH_CUDA)
    with_context("--device cuda", [] { rlxf::cuda::Gpu gpu(0); });
    fail("--device cuda: the models do not run on the CUDA backend yet (issue 12 ports them); use --device cpu");
#else
    fail("--device cuda: this rlxf_mona was built without CUDA (RLXF_ENABLE_CUDA=OFF); use --device cpu");
#endif
  }

  // The whole configuration, the data file included, is checked before anything is written.
  activity = "reading the configuration";
  const Config cfg = [&] {
    if (!config_file) return Config{};
    try {
      const nlohmann::json overrides = io::read_json(*config_file, {.max_depth = 8, .max_bytes = 1 << 20});
      return with_context(config_file->string(), [&] { return from_json(overrides); });
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      usage_error(e.what());
    }
  }();
  try {
    with_context(config_file ? config_file->string() : "the default configuration", [&] { validate(cfg, algorithm); });
  } catch (const Error& e) {
    usage_error(e.what());
  }
  activity = "checking the data file " + cfg.data;
  const io::FileIdentity data_identity = [&] {
    try {
      return io::identify_file(cfg.data);
    } catch (const Error& e) {
      usage_error("field 'data': ", e.what());
    }
  }();
  const nlohmann::json data_record{{"path", cfg.data}, {"size", data_identity.size}, {"fnv1a", data_identity.hash_hex()}};

  activity = "opening the run folder " + run.string();
  if (fs::exists(run) && !fs::is_directory(run)) usage_error("--run ", run.string(), " exists and is not a folder");
  const train::RunLock lock(run);  // one process per run folder
  const nlohmann::json effective = to_json(cfg);
  const bool fresh = !fs::exists(run / "config.json");
  if (!fresh) {  // a run folder belongs to one configuration and one data file
    if (io::read_json(run / "config.json") != effective)
      usage_error(run / "config.json", " differs from this run's configuration: use another --run folder");
    if (fs::exists(run / "data.json") && io::read_json(run / "data.json") != data_record)
      usage_error(cfg.data, " (", data_identity.describe(), ") is not the file this run folder was made from (",
                  run / "data.json", "): use another --run folder");
  }
  std::printf("run folder %s (algorithm %s, seed %llu)\n", run.c_str(), algorithm.c_str(),
              static_cast<unsigned long long>(cfg.seed));

  // 1. Data, splits, tokenizer.
  activity = "loading " + cfg.data;
  const data::MonaTable table = data::load_mona(cfg.data);
  if (io::identify_file(cfg.data) != data_identity) fail(cfg.data, " changed while it was being read");
  std::printf("%s\n", table.report.summary().c_str());
  if (fresh) {  // now known to be valid: the folder records what it is made of
    eval::write_text_file(run / "config.json", effective.dump(2) + "\n");
    eval::write_text_file(run / "data.json", data_record.dump(2) + "\n");
  } else if (!fs::exists(run / "data.json")) {
    eval::write_text_file(run / "data.json", data_record.dump(2) + "\n");
  }
  const data::Split outer = data::random_split(table.labelled(), 0.2, cfg.seed);
  const data::Split inner = data::random_split(outer.train, 0.1, cfg.seed + 1);
  const auto prompt_of = [&](std::size_t i) { return data::policy_prompt(data::condition_context(table.records[i])); };
  activity = "preparing the tokenizer in " + (run / "tokenizer").string();
  tokenize::Bpe bpe = [&] {
    // Bpe::save writes special_tokens_map.json last: without it a save was cut short (the
    // tokenizer is trained again, identically, from the same rows).
    if (fs::exists(run / "tokenizer" / "special_tokens_map.json"))
      return tokenize::Bpe::load(fs::path(run / "tokenizer"));
    std::vector<std::string> corpus;
    for (std::size_t i : outer.train) {
      corpus.push_back(prompt_of(i));
      corpus.push_back(data::classifier_text(table.records[i]));
    }
    tokenize::Bpe b = tokenize::Bpe::train(corpus, {.vocab_size = cfg.vocab});
    b.save(run / "tokenizer");
    return b;
  }();
  std::printf("tokenizer: %zu tokens [%.0f s]\n", bpe.vocab_size(), seconds_since(t0));

  // 2. SFT policy.
  activity = "supervised fine-tuning (" + (run / "sft").string() + ")";
  const model::DecoderConfig dcfg = policy_config(cfg, bpe.vocab_size());
  Rng init(cfg.seed, 11);
  model::TextPolicy policy(bpe, model::Policy<float>(dcfg, init), max_prompt_tokens);
  const fs::path sft_weights = run / "sft" / "policy.safetensors";
  if (fs::exists(sft_weights)) {
    train::load_parameters(sft_weights, policy.policy().parameters(true));
    std::printf("SFT policy: loaded %s\n", sft_weights.c_str());
  } else {
    std::vector<std::string> prompts, answers;
    std::vector<std::size_t> rows(outer.train.begin(), outer.train.end());
    Rng shuffle(cfg.seed, 12);
    for (std::size_t i = rows.size(); i-- > 1;)
      std::swap(rows[i], rows[shuffle.next_below(static_cast<std::uint32_t>(i + 1))]);
    for (std::size_t i : rows) {
      prompts.push_back(prompt_of(i));
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
  const model::Policy<float> sft_snapshot = policy.policy();

  // 3. Reward model.
  activity = "training the reward model (" + (run / "reward_model").string() + ")";
  reward::MonaRewardModel rm = [&] {
    if (fs::exists(run / "reward_model" / "reward.json"))
      return reward::MonaRewardModel::load(run / "reward_model");
    auto [m, fit] = reward::train_mona_reward_model(
        table, inner.train, inner.test, bpe,
        {.classifier = {.train = {.epochs = cfg.rm_epochs, .lr = cfg.rm_lr, .seed = cfg.seed}}, .seed = cfg.seed},
        [](const reward::TrainProgress& p) { print_progress("reward model", p); });
    m.save(run / "reward_model");
    return std::move(m);
  }();
  const auto test_examples = reward::mona_examples(rm, table, outer.test);
  std::vector<std::uint8_t> test_labels;
  for (const auto& e : test_examples)
    test_labels.push_back(e.label);
  const auto rm_metrics = reward::binary_metrics(
      reward::met_probabilities(reward::met_logits(rm.classifier(), test_examples), rm.settings().temperature),
      test_labels);
  std::printf("reward model, held-out rows: %s [%.0f s]\n", reward::summary_line(rm_metrics).c_str(), seconds_since(t0));

  // Prompt sets: the distinct contexts of the training rows, and of the held-out rows.
  const auto distinct_prompts = [&](std::span<const std::size_t> rows, std::uint64_t stream) {
    std::set<std::string> seen;
    std::vector<std::string> out;
    for (std::size_t i : rows)
      if (seen.insert(prompt_of(i)).second)
        out.push_back(prompt_of(i));
    Rng shuffle(cfg.seed, stream);
    for (std::size_t i = out.size(); i-- > 1;)
      std::swap(out[i], out[shuffle.next_below(static_cast<std::uint32_t>(i + 1))]);
    return out;
  };
  const std::vector<std::string> train_prompts = distinct_prompts(outer.train, 13);
  std::vector<std::string> eval_prompts = distinct_prompts(outer.test, 14);
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
    train::Trainer<Algo, model::TextPolicy, reward::MonaRewardModel> trainer(
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
    algo::Ppo ppo(policy, {.steps = cfg.steps,
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
    algo::Dpo dpo(policy, {.lr = cfg.lr, .steps = cfg.steps, .minibatch_size = cfg.minibatch_size, .generation = sample_gen});
    fine_tune(dpo, 2);
  } else if (algorithm == "rs") {
    algo::RejectionSampling rs(policy, {.samples_per_prompt = 4, .generation = sample_gen, .lr = cfg.lr,
                                        .minibatch_size = cfg.minibatch_size, .steps = cfg.steps});
    fine_tune(rs, 4);
  } else if (algorithm == "grpo") {
    algo::Grpo grpo(policy, {.steps = cfg.steps, .group_size = 4, .generation = sample_gen, .lr = cfg.lr});
    fine_tune(grpo, 4);
  } else {
    algo::Rloo rloo(policy, {.steps = cfg.steps, .k = 2, .generation = gen, .lr = cfg.lr});
    fine_tune(rloo, 2);
  }
  std::printf("fine-tuning done [%.0f s]\n", seconds_since(t0));

  // 5. Evaluation and report.
  activity = "evaluating and writing the report in " + run.string();
  model::TextPolicy base(bpe, sft_snapshot, max_prompt_tokens);
  Rng random_init(cfg.seed, 16);
  model::TextPolicy random(bpe, model::Policy<float>(dcfg, random_init), max_prompt_tokens);
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
  std::printf("\n%s\nwrote %s [total %.0f s]\n", result.dump(2).c_str(), (run / "report.md").c_str(), seconds_since(t0));
  return 0;
} catch (const UsageError& e) {
  std::fprintf(stderr, "rlxf_mona: %s\n", e.what());
  return 2;
} catch (const Error& e) {
  std::fprintf(stderr, "rlxf_mona: %s\n", e.what());
  return 1;
} catch (const std::exception& e) {  // not rlxf's: say what was being done
  std::fprintf(stderr, "rlxf_mona: %s: %s\n", escape_control(activity).c_str(), escape_control(e.what()).c_str());
  return 1;
}
