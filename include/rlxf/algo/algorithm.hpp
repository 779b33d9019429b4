#pragma once
// What every algorithm shares: the metrics a step returns and the state a checkpoint keeps.
//
// An algorithm's step(policy, reward_model, prompts, rng) does one round of its work (PPO: a
// rollout batch and its updates) and returns named metrics, with the names TRL logs where they
// exist. state()/restore() carry everything beyond the policy's weights that a resumed run
// needs to continue exactly: the optimizer's moments, KL controller, score statistics, counters.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlxf/algo/advantages.hpp"
#include "rlxf/algo/kl_controller.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/io/json.hpp"
#include "rlxf/io/safetensors.hpp"
#include "rlxf/optim/adamw.hpp"

namespace rlxf::algo {

using StepMetrics = std::vector<std::pair<std::string, double>>;

// The sum of x over the entries where mask is 1, and their number (per-token metrics such as
// the policy's entropies, (B, N) row-major beside the response mask).
inline std::pair<double, std::size_t> masked_sum(std::span<const float> x, std::span<const std::uint8_t> mask) {
  RLXF_REQUIRE(x.size() == mask.size(), "masked_sum: ", x.size(), " values for a mask of ", mask.size());
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (mask[i]) {
      sum += static_cast<double>(x[i]);
      ++n;
    }
  return {sum, n};
}

struct AlgorithmState {
  optim::AdamWState<float> optimizer;
  KlControllerState kl;
  RunningMomentsState moments;
  std::size_t steps = 0;

  // One safetensors file: the optimizer's moments as tensors "adamw.m.<i>" / "adamw.v.<i>",
  // everything else as JSON under the metadata key "rlxf.algorithm". Written atomically.
  void save(const std::filesystem::path& path) const {
    io::SafetensorsWriter w;
    for (std::size_t i = 0; i < optimizer.first_moment.size(); ++i) {
      w.add("adamw.m." + std::to_string(i), optimizer.first_moment[i], {optimizer.first_moment[i].size()});
      w.add("adamw.v." + std::to_string(i), optimizer.second_moment[i], {optimizer.second_moment[i].size()});
    }
    const nlohmann::json j{{"adamw_steps", optimizer.steps},
                           {"adamw_lr", optimizer.lr},
                           {"tensors", optimizer.first_moment.size()},
                           {"kl", {{"value", kl.value}, {"target", kl.target}, {"horizon", kl.horizon},
                                   {"adaptive", kl.adaptive}}},
                           {"moments", {{"count", moments.count}, {"mean", moments.mean}, {"m2", moments.m2}}},
                           {"steps", steps}};
    w.set_metadata("rlxf.algorithm", j.dump());
    w.write(path);
  }

  static AlgorithmState load(const std::filesystem::path& path) {
    return with_context("loading algorithm state " + path.string(), [&] {
      const io::Safetensors file = io::Safetensors::load(path);
      const auto meta = file.metadata().find("rlxf.algorithm");
      if (meta == file.metadata().end())
        fail("no 'rlxf.algorithm' metadata: not an algorithm state file");
      AlgorithmState s;
      with_context("metadata 'rlxf.algorithm'", [&] {
        using io::json_require;
        const nlohmann::json j = io::parse_json(meta->second, "JSON");
        s.optimizer.steps = json_require<std::size_t>(j, "adamw_steps");
        s.optimizer.lr = json_require<double>(j, "adamw_lr");
        const nlohmann::json& kl = io::json_section(j, "kl");
        s.kl = {json_require<double>(kl, "value"), json_require<double>(kl, "target"),
                json_require<double>(kl, "horizon"), json_require<bool>(kl, "adaptive")};
        const nlohmann::json& m = io::json_section(j, "moments");
        s.moments.count = json_require<std::size_t>(m, "count");
        s.moments.mean = json_require<double>(m, "mean");
        s.moments.m2 = json_require<double>(m, "m2");
        s.steps = json_require<std::size_t>(j, "steps");
        const auto n = json_require<std::size_t>(j, "tensors");
        // Two tensors per parameter tensor: a count the file does not hold is refused before
        // anything is allocated for it.
        if (n > file.tensors().size())
          fail("'tensors' = ", n, " but the file holds ", file.tensors().size(), " tensors");
        for (std::size_t i = 0; i < n; ++i) {
          s.optimizer.first_moment.push_back(file.read<float>("adamw.m." + std::to_string(i)));
          s.optimizer.second_moment.push_back(file.read<float>("adamw.v." + std::to_string(i)));
        }
      });
      return s;
    });
  }
};

}  // namespace rlxf::algo
