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
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlxf/algo/advantages.hpp"
#include "rlxf/algo/kl_controller.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/io/safetensors.hpp"
#include "rlxf/optim/adamw.hpp"

namespace rlxf::algo {

using StepMetrics = std::vector<std::pair<std::string, double>>;

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
      const nlohmann::json j = with_context("metadata 'rlxf.algorithm'", [&] {
        nlohmann::json parsed = nlohmann::json::parse(meta->second, nullptr, false);
        if (parsed.is_discarded() || !parsed.is_object())
          fail("not a JSON object");
        return parsed;
      });
      AlgorithmState s;
      with_context("metadata 'rlxf.algorithm'", [&] {
        try {
        s.optimizer.steps = j.at("adamw_steps").get<std::size_t>();
        s.optimizer.lr = j.at("adamw_lr").get<double>();
        const auto& kl = j.at("kl");
        s.kl = {kl.at("value").get<double>(), kl.at("target").get<double>(), kl.at("horizon").get<double>(),
                kl.at("adaptive").get<bool>()};
        const auto& m = j.at("moments");
        s.moments.count = m.at("count").get<std::size_t>();
        s.moments.mean = m.at("mean").get<double>();
        s.moments.m2 = m.at("m2").get<double>();
        s.steps = j.at("steps").get<std::size_t>();
        const auto n = j.at("tensors").get<std::size_t>();
        for (std::size_t i = 0; i < n; ++i) {
          s.optimizer.first_moment.push_back(file.read<float>("adamw.m." + std::to_string(i)));
          s.optimizer.second_moment.push_back(file.read<float>("adamw.v." + std::to_string(i)));
        }
        } catch (const nlohmann::json::exception& e) {
          fail("malformed: ", e.what());
        }
      });
      return s;
    });
  }
};

}  // namespace rlxf::algo
