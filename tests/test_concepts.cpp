#include <doctest/doctest.h>

#include <cstddef>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/schedule.hpp"

#include "rlxf/algo/dpo.hpp"
#include "rlxf/algo/grpo.hpp"
#include "rlxf/algo/ppo.hpp"
#include "rlxf/algo/rejection_sampling.hpp"
#include "rlxf/algo/rloo.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/reward/mona_reward_model.hpp"

namespace {
struct NoZeroGrad {  // an optimizer missing zero_grad()
  void step() {}
  double lr() const { return 0; }
  void set_lr(double) {}
  std::size_t steps() const { return 0; }
};
struct StringSchedule {  // returns the wrong type
  const char* operator()(std::size_t) const { return "0.1"; }
};
struct NoRestore {  // an algorithm that cannot be resumed
  template <class R>
  std::vector<std::pair<std::string, double>> step(rlxf::model::TextPolicy&, const R&, std::span<const std::string>,
                                                   rlxf::Rng&) {
    return {};
  }
  int state() const { return 0; }
};
struct MetricsAsMap {  // step returns the wrong type
  template <class R>
  std::map<std::string, double> step(rlxf::model::TextPolicy&, const R&, std::span<const std::string>, rlxf::Rng&) {
    return {};
  }
  rlxf::algo::AlgorithmState state() const { return {}; }
  void restore(const rlxf::algo::AlgorithmState&) {}
};
}  // namespace

TEST_CASE("the Algorithm concept accepts the five algorithms and rejects incomplete ones") {
  using rlxf::Algorithm;
  using Policy = rlxf::model::TextPolicy;
  using Reward = rlxf::reward::MonaRewardModel;
  static_assert(Algorithm<rlxf::algo::Ppo, Policy, Reward>);
  static_assert(Algorithm<rlxf::algo::Dpo, Policy, Reward>);
  static_assert(Algorithm<rlxf::algo::RejectionSampling, Policy, Reward>);
  static_assert(Algorithm<rlxf::algo::Grpo, Policy, Reward>);
  static_assert(Algorithm<rlxf::algo::Rloo, Policy, Reward>);
  static_assert(!Algorithm<NoRestore, Policy, Reward>);
  static_assert(!Algorithm<MetricsAsMap, Policy, Reward>);
  static_assert(!Algorithm<rlxf::algo::Ppo, Policy, int>);  // int is not a RewardModel
}

TEST_CASE("concepts accept rlxf's types and reject incomplete ones") {
  static_assert(rlxf::Optimizer<rlxf::optim::AdamW<float>>);
  static_assert(!rlxf::Optimizer<NoZeroGrad>);
  static_assert(!rlxf::Optimizer<int>);
  static_assert(rlxf::Schedule<rlxf::optim::Cosine>);
  static_assert(rlxf::Schedule<double (*)(std::size_t)>);
  static_assert(!rlxf::Schedule<StringSchedule>);
  CHECK(rlxf::optim::LinearDecay(1.0, 0, 10)(5) == doctest::Approx(0.5));
}
