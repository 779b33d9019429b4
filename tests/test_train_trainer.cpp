// rlxf::train::Trainer with Ppo on a tiny policy and a toy reward, in fresh temp run dirs:
// metrics.jsonl and checkpoints of a full run, a simulated crash and resume that reproduces the
// uninterrupted run exactly, prompts_for's seeded permutations, corrupted checkpoints, and
// save_parameters / load_parameters.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>

#include <nlohmann/json.hpp>

#include "error_of.hpp"
#include "temp_dir.hpp"
#include "rlxf/algo/ppo.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/tokenize/bpe.hpp"
#include "rlxf/train/checkpoint.hpp"
#include "rlxf/train/run_lock.hpp"
#include "rlxf/train/trainer.hpp"

using namespace rlxf;
using algo::Ppo;
using rlxf::test::error_of;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Reward: the fraction of the answer's bytes that are 'a' (0 when empty).
struct LetterAReward {
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string> responses) const {
    RLXF_REQUIRE(prompts.size() == responses.size(), "LetterAReward: ", prompts.size(), " prompts, ",
                 responses.size(), " responses");
    std::vector<double> out;
    for (const std::string& r : responses)
      out.push_back(r.empty() ? 0.0
                              : static_cast<double>(std::count(r.begin(), r.end(), 'a')) / static_cast<double>(r.size()));
    return out;
  }
};
const LetterAReward reward_model{};

using PpoTrainer = train::Trainer<Ppo, model::TextPolicy, LetterAReward>;

tokenize::Bpe tiny_bpe() {
  const std::vector<std::string> corpus = {"the cat sat on the mat", "a dog ate the bone", "the bird sang a song",
                                           "cats and dogs and birds", "a banana and a papaya", "aaa aa a"};
  return tokenize::Bpe::train(corpus, {.vocab_size = 280});
}

model::TextPolicy tiny_policy(std::uint64_t seed) {
  tokenize::Bpe bpe = tiny_bpe();
  Rng rng(seed);
  const model::DecoderConfig cfg{.vocab_size = bpe.vocab_size(), .max_positions = 32, .d_model = 16,
                                 .n_layers = 1, .n_heads = 2, .d_hidden = 32};
  return model::TextPolicy(std::move(bpe), model::Policy<float>(cfg, rng));
}

const std::vector<std::string> prompts = {"the cat", "a dog", "the bird", "cats and", "the mat",
                                          "a bone", "the song", "dogs and", "a cat", "the dog"};

using rlxf::test::TempDir;

// A policy, a Ppo on it and a Trainer, built the same way every time (as a restarted program
// would): the policy from seed 1, the Ppo's reference a copy of it.
struct Setup {
  model::TextPolicy policy;
  Ppo ppo;
  PpoTrainer trainer;
  Setup(const fs::path& run_dir, std::size_t steps = 6, std::size_t checkpoint_every = 2)
      : policy(tiny_policy(1)),
        ppo(policy, {.steps = steps, .generation = {.max_new_tokens = 8, .temperature = 1.0}, .ppo_epochs = 2,
                     .minibatch_size = 8, .lr = 1e-2}),
        trainer(ppo, policy, reward_model,
                {.steps = steps, .prompts_per_step = 8, .checkpoint_every = checkpoint_every, .run_dir = run_dir,
                 .seed = 42, .progress = false}) {}
};

std::vector<std::string> lines_of(const fs::path& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::vector<std::string> step_dirs(const fs::path& run_dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(run_dir / "checkpoints"))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::vector<float>> values_of(model::TextPolicy& policy) {
  std::vector<std::vector<float>> out;
  for (const auto& p : policy.policy().parameters(true)) out.emplace_back(p.param->value.begin(), p.param->value.end());
  return out;
}

}  // namespace

TEST_CASE("Trainer: a 6-step run logs 6 metric lines and keeps the 2 newest checkpoints") {
  TempDir dir("full");
  Setup s(dir.path);
  std::vector<std::size_t> seen, evaluated;
  s.trainer.on_step([&](std::size_t step, algo::StepMetrics& m) {
    seen.push_back(step);
    m.emplace_back("custom/step", static_cast<double>(step));
  });
  s.trainer.on_evaluate([&](std::size_t step, algo::StepMetrics& m) {
    evaluated.push_back(step);
    m.emplace_back("eval/mark", 1.0);
  });
  CHECK(s.trainer.run(prompts) == 0);
  CHECK(seen == std::vector<std::size_t>{0, 1, 2, 3, 4, 5});
  CHECK(evaluated == std::vector<std::size_t>{5});  // eval_every 0: after the last step only
  CHECK(s.ppo.steps_done() == 6);

  const auto lines = lines_of(dir.path / "metrics.jsonl");
  REQUIRE(lines.size() == 6);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    CAPTURE(lines[i]);
    const auto j = nlohmann::json::parse(lines[i]);
    CHECK(j.at("step").get<std::size_t>() == i + 1);
    for (const char* name : {"objective/kl", "objective/entropy", "objective/non_score_reward", "objective/rlhf_reward",
                             "objective/scores", "policy/approxkl_avg", "policy/clipfrac_avg", "loss/policy_avg",
                             "loss/value_avg", "val/clipfrac_avg", "val/ratio", "val/num_eos_tokens", "lr"})
      CHECK_MESSAGE(j.contains(name), name);
    CHECK(j.at("custom/step").get<double>() == static_cast<double>(i));
    CHECK(j.contains("eval/mark") == (i == 5));
  }
  CHECK(nlohmann::json::parse(lines[0]).at("objective/kl").get<double>() == 0.0);

  const fs::path ckpt = dir.path / "checkpoints";
  CHECK(read_text(ckpt / "latest") == "step-000006\n");
  CHECK(step_dirs(dir.path) == std::vector<std::string>{"step-000004", "step-000006"});
  for (const char* f : {"policy.safetensors", "algorithm.safetensors", "trainer.json"})
    CHECK_MESSAGE(fs::is_regular_file(ckpt / "step-000006" / f), f);
  CHECK(nlohmann::json::parse(read_text(ckpt / "step-000006" / "trainer.json")) == nlohmann::json{{"step", 6}});
  // The checkpoint holds the final weights and the algorithm's state.
  model::TextPolicy loaded = tiny_policy(2);
  train::load_parameters(ckpt / "step-000006" / "policy.safetensors", loaded.policy().parameters(true));
  CHECK(values_of(loaded) == values_of(s.policy));
  const auto state = algo::AlgorithmState::load(ckpt / "step-000006" / "algorithm.safetensors");
  CHECK(state.steps == 6);
  CHECK(state.kl.value == s.ppo.beta());

  // Running a finished run again resumes at its end and does nothing.
  Setup again(dir.path);
  CHECK(again.trainer.run(prompts) == 6);
  CHECK(lines_of(dir.path / "metrics.jsonl") == lines);
  CHECK(values_of(again.policy) == values_of(s.policy));
}

TEST_CASE("Trainer: killed after step 4 and restarted, the run resumes at 2 and ends exactly as an uninterrupted one") {
  TempDir straight("straight"), crashed("crashed");
  Setup a(straight.path);
  CHECK(a.trainer.run(prompts) == 0);
  const auto want_lines = lines_of(straight.path / "metrics.jsonl");
  REQUIRE(want_lines.size() == 6);

  {
    // Step index 3 (the 4th step) updates the policy, then "crashes" before its log line: on
    // disk the checkpoint of step 2 and the log lines of steps 1-3.
    Setup b(crashed.path);
    b.trainer.on_step([](std::size_t step, algo::StepMetrics&) {
      if (step == 3) throw std::runtime_error("simulated crash");
    });
    CHECK_THROWS_WITH_AS(b.trainer.run(prompts), "simulated crash", std::runtime_error);
    CHECK(read_text(crashed.path / "checkpoints" / "latest") == "step-000002\n");
    const auto partial = lines_of(crashed.path / "metrics.jsonl");
    REQUIRE(partial.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK(partial[i] == want_lines[i]);
  }

  Setup c(crashed.path);
  CHECK(c.trainer.run(prompts) == 2);
  CHECK(c.ppo.steps_done() == 6);
  const auto got_lines = lines_of(crashed.path / "metrics.jsonl");
  CHECK(got_lines.size() == 6);
  CHECK(got_lines == want_lines);
  CHECK(values_of(c.policy) == values_of(a.policy));
  CHECK(c.ppo.beta() == a.ppo.beta());
  CHECK(read_text(crashed.path / "checkpoints" / "latest") == "step-000006\n");
  CHECK(step_dirs(crashed.path) == std::vector<std::string>{"step-000004", "step-000006"});
}

TEST_CASE("Trainer::prompts_for: seeded, order-independent, every prompt once per epoch") {
  TempDir dir("prompts");
  const std::vector<std::string> five = {"p0", "p1", "p2", "p3", "p4"};
  model::TextPolicy policy = tiny_policy(1);
  Ppo ppo(policy, {.steps = 5, .generation = {.max_new_tokens = 8, .temperature = 1.0}});
  const auto trainer_with_seed = [&](std::uint64_t seed) {
    return std::make_unique<PpoTrainer>(ppo, policy, reward_model,
                                        train::TrainerConfig{.steps = 5, .prompts_per_step = 3, .run_dir = dir.path,
                                                             .seed = seed, .progress = false});
  };
  const auto t = trainer_with_seed(7);
  std::vector<std::string> all;
  for (std::size_t step = 0; step < 5; ++step) {
    const auto batch = t->prompts_for(five, step);
    REQUIRE(batch.size() == 3);
    all.insert(all.end(), batch.begin(), batch.end());
  }
  // 15 prompts = 3 epochs of 5, each a permutation of the set.
  for (std::size_t epoch = 0; epoch < 3; ++epoch) {
    CAPTURE(epoch);
    std::vector<std::string> block(all.begin() + static_cast<std::ptrdiff_t>(5 * epoch),
                                   all.begin() + static_cast<std::ptrdiff_t>(5 * epoch + 5));
    std::sort(block.begin(), block.end());
    CHECK(block == five);
  }
  // The same seed gives the same prompts, whatever order the steps are asked in.
  const auto u = trainer_with_seed(7);
  for (std::size_t step = 5; step-- > 0;) {
    const auto batch = u->prompts_for(five, step);
    CHECK(std::equal(batch.begin(), batch.end(), all.begin() + static_cast<std::ptrdiff_t>(3 * step)));
  }
  // The epochs are shuffled differently, and another seed gives another order.
  CHECK(!std::equal(all.begin(), all.begin() + 5, all.begin() + 5));
  const auto v = trainer_with_seed(8);
  std::vector<std::string> other;
  for (std::size_t step = 0; step < 5; ++step) {
    const auto batch = v->prompts_for(five, step);
    other.insert(other.end(), batch.begin(), batch.end());
  }
  CHECK(other != all);
}

TEST_CASE("Trainer: a corrupted checkpoint or a dangling 'latest' makes run() fail naming the file") {
  TempDir dir("corrupt");
  {
    Setup s(dir.path, 2, 2);
    CHECK(s.trainer.run(prompts) == 0);
  }
  const fs::path step_dir = dir.path / "checkpoints" / "step-000002";
  const fs::path policy_file = step_dir / "policy.safetensors";
  const std::string good = read_text(policy_file);
  const auto lines = lines_of(dir.path / "metrics.jsonl");
  REQUIRE(lines.size() == 2);

  write_text(policy_file, good.substr(0, good.size() / 2));
  {
    Setup s(dir.path, 4, 2);
    const std::string err = error_of([&] { s.trainer.run(prompts); });
    INFO(err);
    CHECK(contains(err, "policy.safetensors"));
    CHECK(contains(err, "resuming from"));
  }
  CHECK(lines_of(dir.path / "metrics.jsonl") == lines);  // nothing was written
  write_text(policy_file, good);

  const fs::path algo_file = step_dir / "algorithm.safetensors";
  const std::string algo_good = read_text(algo_file);
  write_text(algo_file, algo_good.substr(0, 20));
  {
    Setup s(dir.path, 4, 2);
    const std::string err = error_of([&] { s.trainer.run(prompts); });
    INFO(err);
    CHECK(contains(err, "algorithm.safetensors"));
  }
  write_text(algo_file, algo_good);

  write_text(step_dir / "trainer.json", "{\"steps\": 2}\n");
  {
    Setup s(dir.path, 4, 2);
    const std::string err = error_of([&] { s.trainer.run(prompts); });
    INFO(err);
    CHECK(contains(err, "trainer.json"));
  }
  write_text(step_dir / "trainer.json", "{\"step\": 2}\n");

  write_text(dir.path / "checkpoints" / "latest", "step-000099\n");
  {
    Setup s(dir.path, 4, 2);
    const std::string err = error_of([&] { s.trainer.run(prompts); });
    INFO(err);
    CHECK(contains(err, "step-000099"));
    CHECK(contains(err, "does not exist"));
  }

  // Repaired, the run resumes (a checkpoint beyond the run's steps is refused).
  write_text(dir.path / "checkpoints" / "latest", "step-000002\n");
  {
    Setup s(dir.path, 1, 1);
    CHECK(contains(error_of([&] { s.trainer.run(prompts); }), "the checkpoint is at step 2 but the run has 1 steps"));
  }
  {
    Setup s(dir.path, 3, 2);
    CHECK(s.trainer.run(prompts) == 2);
    CHECK(lines_of(dir.path / "metrics.jsonl").size() == 3);
  }
}

TEST_CASE("Trainer: a corrupt newest checkpoint falls back to the previous one, which resumes exactly") {
  TempDir straight("fallback_straight"), dir("fallback");
  Setup a(straight.path);
  CHECK(a.trainer.run(prompts) == 0);
  {
    Setup s(dir.path, 6, 2);
    s.trainer.on_step([](std::size_t step, algo::StepMetrics&) {
      if (step == 4) throw std::runtime_error("simulated crash");
    });
    CHECK_THROWS_AS(s.trainer.run(prompts), std::runtime_error);
  }
  REQUIRE(step_dirs(dir.path) == std::vector<std::string>{"step-000002", "step-000004"});
  const fs::path newest = dir.path / "checkpoints" / "step-000004" / "policy.safetensors";
  const std::string good = read_text(newest);
  write_text(newest, good.substr(0, good.size() - 7));  // truncated: the newest is unusable
  Setup c(dir.path);
  CHECK(c.trainer.run(prompts) == 2);  // from step 2, with a warning on stderr
  CHECK(lines_of(dir.path / "metrics.jsonl") == lines_of(straight.path / "metrics.jsonl"));
  CHECK(values_of(c.policy) == values_of(a.policy));
}

TEST_CASE("Trainer: a second process (or Trainer) in the same run folder is refused while the first holds it") {
  TempDir dir("locked");
  std::string err;
  {
    const train::RunLock held(dir.path);
    Setup s(dir.path, 2, 2);
    err = error_of([&] { s.trainer.run(prompts); });
  }
  INFO(err);
  CHECK(contains(err, "in use by another process"));
  CHECK(contains(err, "pid " + std::to_string(::getpid())));
  CHECK(!fs::exists(dir.path / "metrics.jsonl"));  // nothing written
  Setup s(dir.path, 2, 2);  // released: the run goes ahead
  CHECK(s.trainer.run(prompts) == 0);
}

TEST_CASE("Trainer: a failed write of metrics.jsonl is an error naming the file, not a silent gap") {
  TempDir dir("full");
  std::string err;
  {
    // Files may grow to 200 bytes (the lock file's line fits, a metrics line does not): the
    // write fails with EFBIG, as it would with a full disk.
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit old{};
    ::getrlimit(RLIMIT_FSIZE, &old);
    rlimit small = old;
    small.rlim_cur = 200;
    ::setrlimit(RLIMIT_FSIZE, &small);
    Setup s(dir.path, 2, 2);
    err = error_of([&] { s.trainer.run(prompts); });
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
  }
  INFO(err);
  CHECK(contains(err, "metrics.jsonl"));
  CHECK(contains(err, "at step 1"));
  CHECK(!fs::exists(dir.path / "checkpoints" / "latest"));
}

TEST_CASE("Trainer: metrics.jsonl that is not a regular file (a link to /dev/zero) is refused, not read forever") {
  TempDir dir("zero");
  fs::create_symlink("/dev/zero", dir.path / "metrics.jsonl");
  Setup s(dir.path, 2, 2);
  const std::string err = error_of([&] { s.trainer.run(prompts); });
  INFO(err);
  CHECK(contains(err, "metrics.jsonl"));
  CHECK(contains(err, "not a regular file"));
}

TEST_CASE("Trainer: config errors") {
  model::TextPolicy policy = tiny_policy(1);
  Ppo ppo(policy, {.steps = 5, .generation = {.max_new_tokens = 8, .temperature = 1.0}});
  const auto make = [&](train::TrainerConfig cfg) { PpoTrainer t(ppo, policy, reward_model, std::move(cfg)); };
  CHECK(contains(error_of([&] { make({.steps = 2, .run_dir = {}}); }), "run_dir is required"));
  CHECK(contains(error_of([&] { make({.steps = 0, .run_dir = "/tmp/x"}); }), "steps must be > 0"));
  CHECK(contains(error_of([&] { make({.prompts_per_step = 0, .run_dir = "/tmp/x"}); }), "prompts_per_step must be > 0"));
  CHECK(contains(error_of([&] { make({.checkpoint_every = 0, .run_dir = "/tmp/x"}); }), "checkpoint_every must be > 0"));
  CHECK(contains(error_of([] { train::CheckpointDir("/tmp/x", 0); }), "keep must be >= 1"));
}

TEST_CASE("save_parameters / load_parameters: round trip, a missing tensor or a wrong shape is named") {
  TempDir dir("params");
  const fs::path file = dir.path / "p.safetensors";
  model::TextPolicy a = tiny_policy(1), b = tiny_policy(2);
  REQUIRE(values_of(a) != values_of(b));
  train::save_parameters(file, a.policy().parameters(true));
  train::load_parameters(file, b.policy().parameters(true));
  CHECK(values_of(a) == values_of(b));

  // A file without the value head, loaded into decoder + value head: the tensor is named.
  auto decoder_only = a.policy().parameters(false);
  const auto full = a.policy().parameters(true);
  REQUIRE(full.size() > decoder_only.size());
  const std::string missing_name = full[decoder_only.size()].name;
  // Same count, one name changed: the model's tensor is missing from the file.
  auto renamed = full;
  renamed.back().name = "not_a_parameter";
  train::save_parameters(file, renamed);
  std::string err = error_of([&] { train::load_parameters(file, b.policy().parameters(true)); });
  INFO(err);
  CHECK(contains(err, "'" + full.back().name + "'"));
  CHECK(contains(err, "missing"));
  CHECK(contains(err, file.string()));
  // Fewer tensors than the model.
  train::save_parameters(file, decoder_only);
  err = error_of([&] { train::load_parameters(file, b.policy().parameters(true)); });
  INFO(err);
  CHECK(contains(err, "'" + missing_name + "'"));
  // A wrong shape (the last tensor: everything before it is fine).
  Parameter<float> wrong(std::vector<std::size_t>{3, 5});
  auto reshaped = full;
  reshaped.back().param = &wrong;
  train::save_parameters(file, reshaped);
  err = error_of([&] { train::load_parameters(file, b.policy().parameters(true)); });
  INFO(err);
  CHECK(contains(err, "'" + full.back().name + "'"));
  CHECK(contains(err, "shape (3, 5)"));
  // A failed load leaves the model as it was.
  model::TextPolicy c = tiny_policy(3);
  const auto before = values_of(c);
  CHECK(!error_of([&] { train::load_parameters(file, c.policy().parameters(true)); }).empty());
  CHECK(values_of(c) == before);
}
