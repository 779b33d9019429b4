#pragma once
// Trainer<Algorithm, Policy, RewardModel>: runs an algorithm's steps over a prompt set, writes
// one JSON line of metrics per step, evaluates at an interval, checkpoints the policy and the
// algorithm's state, and resumes from the last checkpoint of its run directory.
//
//   algo::Ppo ppo(policy, ppo_cfg);
//   train::Trainer<algo::Ppo, model::TextPolicy, reward::MonaRewardModel> trainer(
//       ppo, policy, reward_model, {.steps = 60, .prompts_per_step = 32, .run_dir = "runs/x"});
//   trainer.run(prompts);           // again after a crash: continues from the last checkpoint
//
// Reproducibility: step s samples its prompts from a seeded permutation of the prompt set and
// gives the algorithm Rng(seed, stream s), so a resumed run repeats exactly what an
// uninterrupted one does. A NaN or Inf in a loss or gradient stops the run with the
// algorithm's error; the checkpoints on disk stay as they were. One process at a time runs in
// a run directory (train::RunLock); a corrupt newest checkpoint falls back to the one before,
// with a warning.
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <sstream>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "rlxf/algo/algorithm.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/range.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/io/file.hpp"
#include "rlxf/io/json.hpp"
#include "rlxf/train/checkpoint.hpp"
#include "rlxf/train/run_lock.hpp"

namespace rlxf::train {

struct TrainerConfig {
  std::size_t steps = 100;            // algorithm steps in the run
  std::size_t prompts_per_step = 32;
  std::size_t eval_every = 0;         // steps between evaluation callbacks; 0 = none
  std::size_t checkpoint_every = 10;  // steps between checkpoints (and one at the end)
  std::filesystem::path run_dir;      // metrics.jsonl and checkpoints/; required
  std::uint64_t seed = 0;
  bool progress = true;               // a progress line (on a terminal; one line per checkpoint otherwise)
};

// Called after each step with its metrics; may add entries (they are logged too).
using StepCallback = std::function<void(std::size_t step, algo::StepMetrics& metrics)>;

template <class A, class P, RewardModel R>
  requires Algorithm<A, P, R>
class Trainer {
 public:
  Trainer(A& algorithm, P& policy, const R& reward_model, TrainerConfig cfg)
      : algo_(algorithm), policy_(policy), rm_(reward_model), cfg_(std::move(cfg)), checkpoints_(cfg_.run_dir) {
    RLXF_REQUIRE(!cfg_.run_dir.empty(), "TrainerConfig.run_dir is required");
    RLXF_REQUIRE(cfg_.steps > 0, "TrainerConfig.steps must be > 0");
    RLXF_REQUIRE(cfg_.prompts_per_step > 0, "TrainerConfig.prompts_per_step must be > 0");
    RLXF_REQUIRE(cfg_.checkpoint_every > 0, "TrainerConfig.checkpoint_every must be > 0");
    require_in("TrainerConfig.prompts_per_step", cfg_.prompts_per_step, Range::closed(1, 1 << 24));
  }

  // After every step (metrics may be extended, e.g. with evaluation results).
  void on_step(StepCallback cb) { step_callbacks_.push_back(std::move(cb)); }
  // Every eval_every steps (and after the last): adds evaluation metrics.
  void on_evaluate(StepCallback cb) { eval_callbacks_.push_back(std::move(cb)); }

  // Runs (or resumes) the run. Returns the step it started from (0 for a fresh run).
  std::size_t run(std::span<const std::string> prompts) {
    RLXF_REQUIRE(!prompts.empty(), "Trainer::run: no prompts");
    const RunLock lock(cfg_.run_dir);
    const std::size_t start = resume();
    truncate_metrics(start);
    const auto log_path = cfg_.run_dir / "metrics.jsonl";
    std::ofstream log(log_path, std::ios::app);
    if (!log) fail("cannot open ", log_path.string(), " for appending");
    const bool tty = cfg_.progress && isatty(fileno(stderr));
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t step = start; step < cfg_.steps; ++step) {
      const std::vector<std::string> batch = prompts_for(prompts, step);
      Rng rng(cfg_.seed, 0x5354455000000000ULL + step);  // "STEP" + step
      algo::StepMetrics metrics = algo_.step(policy_, rm_, batch, rng);
      const bool last = step + 1 == cfg_.steps;
      for (auto& cb : step_callbacks_)
        cb(step, metrics);
      if ((cfg_.eval_every && (step + 1) % cfg_.eval_every == 0) || (last && !eval_callbacks_.empty()))
        for (auto& cb : eval_callbacks_)
          cb(step, metrics);
      nlohmann::json line{{"step", step + 1}};
      for (const auto& [name, value] : metrics)
        line[name] = std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
      log << line.dump() << '\n' << std::flush;
      if (!log) fail("writing ", log_path.string(), " failed (disk full?) at step ", step + 1);
      const bool checkpoint = (step + 1) % cfg_.checkpoint_every == 0 || last;
      if (checkpoint)
        save(step + 1);
      if (cfg_.progress)
        report(step + 1, start, metrics, t0, tty, checkpoint);
    }
    if (tty)
      std::fprintf(stderr, "\n");
    return start;
  }

  // The prompts of step `step`: consecutive slices of seeded permutations of the prompt set.
  std::vector<std::string> prompts_for(std::span<const std::string> prompts, std::size_t step) const {
    std::vector<std::string> out;
    const std::size_t n = prompts.size();
    for (std::size_t k = 0; k < cfg_.prompts_per_step; ++k) {
      const std::size_t global = step * cfg_.prompts_per_step + k;
      const std::size_t epoch = global / n;
      if (epoch != perm_epoch_ || perm_.size() != n) {
        perm_.resize(n);
        std::iota(perm_.begin(), perm_.end(), std::size_t{0});
        Rng rng(cfg_.seed, 0x50524F4D00000000ULL + epoch);  // "PROM" + epoch
        for (std::size_t i = n; i-- > 1;)
          std::swap(perm_[i], perm_[rng.next_below(static_cast<std::uint32_t>(i + 1))]);
        perm_epoch_ = epoch;
      }
      out.push_back(prompts[perm_[global % n]]);
    }
    return out;
  }

 private:
  // Loads the newest usable checkpoint; a corrupt one (a damaged disk, a file edited by hand)
  // is reported and the one before it is tried. Returns the step to continue from.
  std::size_t resume() {
    const auto candidates = checkpoints_.candidates();
    for (std::size_t i = 0; i < candidates.size(); ++i) {
      try {
        return load_checkpoint(candidates[i]);
      } catch (const Error& e) {
        if (i + 1 == candidates.size())
          throw;
        std::fprintf(stderr, "warning: %s\nwarning: resuming from the previous checkpoint %s instead\n", e.what(),
                     candidates[i + 1].c_str());
      }
    }
    return 0;
  }

  // Reads everything first, then changes the policy and the algorithm: a checkpoint that fails
  // half way leaves them as they were, for the next candidate.
  std::size_t load_checkpoint(const std::filesystem::path& dir) {
    return with_context("resuming from " + dir.string(), [&] {
      const nlohmann::json j = io::read_json(dir / "trainer.json");
      const auto step = with_context("trainer.json", [&] { return io::json_require<std::size_t>(j, "step"); });
      RLXF_REQUIRE(step <= cfg_.steps, "the checkpoint is at step ", step, " but the run has ", cfg_.steps, " steps");
      const algo::AlgorithmState state = algo::AlgorithmState::load(dir / "algorithm.safetensors");
      load_parameters(dir / "policy.safetensors", policy_.policy().parameters(true));
      algo_.restore(state);
      return step;
    });
  }

  void save(std::size_t steps_done) {
    const auto dir = checkpoints_.prepare(steps_done);
    save_parameters(dir / "policy.safetensors", policy_.policy().parameters(true));
    algo_.state().save(dir / "algorithm.safetensors");
    const std::string text = nlohmann::json{{"step", steps_done}}.dump() + "\n";
    io::AtomicFile file(dir / "trainer.json");
    file.append(std::as_bytes(std::span(text)));
    file.commit();
    checkpoints_.commit(steps_done);
  }

  // Drops the lines of steps after `steps_done` (written after the checkpoint a resumed run
  // starts from), so the log holds each step once.
  void truncate_metrics(std::size_t steps_done) const {
    const auto path = cfg_.run_dir / "metrics.jsonl";
    if (!std::filesystem::exists(std::filesystem::symlink_status(path)))
      return;
    // A regular file only (a link to /dev/zero would never end), read whole.
    const std::vector<std::byte> bytes = with_context(path.string(), [&] { return io::detail::read_file(path); });
    std::istringstream in(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    std::string kept, line;
    while (std::getline(in, line)) {
      nlohmann::json j;
      try {
        j = io::parse_json(line, path.string());
      } catch (const Error&) {
        continue;  // a damaged line is dropped (the weights of its step are in the checkpoint)
      }
      if (j.is_object() && j.contains("step") && j["step"].is_number_unsigned() &&
          j["step"].get<std::uint64_t>() <= steps_done)
        kept += line + "\n";
    }
    io::AtomicFile file(path);
    file.append(std::as_bytes(std::span(kept)));
    file.commit();
  }

  void report(std::size_t done, std::size_t start, const algo::StepMetrics& metrics,
              std::chrono::steady_clock::time_point t0, bool tty, bool checkpoint) const {
    if (!tty && !checkpoint)
      return;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double per_step = secs / static_cast<double>(done - start);
    std::string shown;
    for (const auto& [name, value] : metrics)
      if (name == "objective/scores" || name == "objective/kl" || name == "rewards/margins" || name == "reward") {
        char buf[64];
        std::snprintf(buf, sizeof buf, " %s %.4g", name.c_str(), value);
        shown += buf;
      }
    std::fprintf(stderr, "%sstep %zu/%zu%s | %.1f s/step, ETA %.0f s%s", tty ? "\r" : "", done, cfg_.steps,
                 shown.c_str(), per_step, per_step * static_cast<double>(cfg_.steps - done), tty ? "   " : "\n");
    std::fflush(stderr);
  }

  A& algo_;
  P& policy_;
  const R& rm_;
  TrainerConfig cfg_;
  CheckpointDir checkpoints_;
  std::vector<StepCallback> step_callbacks_, eval_callbacks_;
  mutable std::vector<std::size_t> perm_;
  mutable std::size_t perm_epoch_ = static_cast<std::size_t>(-1);
};

}  // namespace rlxf::train
