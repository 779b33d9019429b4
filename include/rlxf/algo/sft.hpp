#pragma once
// Supervised fine-tuning: maximise the log-likelihood of given answers (and their EOS) after
// their prompts, the loss on answer tokens only (prompt tokens are context). This makes the
// SFT policy that PPO, DPO and the rest start from and keep as their reference.
//
//   const auto report = algo::sft(policy, prompts, answers, {.train = {.epochs = 2, .lr = 1e-3}});
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/reward/training_loop.hpp"

namespace rlxf::algo {

struct SftConfig {
  reward::TrainOptions train{.epochs = 2, .lr = 1e-3};
  std::size_t max_answer_tokens = 64;  // EOS included
  double validation_fraction = 0.05;   // held out from the pairs for early stopping; 0 = none
};

// Mean negative log-likelihood per answer token of the rows of `batch`, and (if `grad`) its
// gradient accumulated into the policy's decoder. Any rlxf::Policy.
template <rlxf::Policy Pol>
double sft_loss(Pol& policy, const model::SequenceBatch& batch, bool grad) {
  typename Pol::Cache cache;
  const typename Pol::Outputs out = policy.forward(batch, 1.0, false, cache);
  const model::Mask mask = batch.response_mask();
  double sum = 0;
  std::size_t count = 0;
  for (std::size_t i = 0; i < mask.size(); ++i)
    if (mask.data()[i]) {
      sum -= out.logprobs.data()[i];
      ++count;
    }
  RLXF_REQUIRE(count > 0, "sft: a batch without answer tokens");
  if (grad) {
    using T = model::logprob_t<Pol>;
    Tensor<T, 2> dlogp = zeros<T, 2>({mask.shape()[0], mask.shape()[1]});
    for (std::size_t i = 0; i < mask.size(); ++i)
      dlogp.data()[i] = mask.data()[i] ? T(-1) / static_cast<T>(count) : T(0);
    policy.backward(dlogp, nullptr, cache);
  }
  return sum / static_cast<double>(count);
}

// Trains the policy's decoder on (prompt, answer) pairs. Validation reports the answer-token
// NLL and, as "accuracy", exp(-NLL) (the per-token likelihood).
template <rlxf::Policy Pol>
reward::TrainReport sft(model::BasicTextPolicy<Pol>& policy, std::span<const std::string> prompts,
                        std::span<const std::string> answers, const SftConfig& cfg = {},
                        const reward::ProgressFn& progress = {}) {
  RLXF_REQUIRE(prompts.size() == answers.size(), "sft: ", prompts.size(), " prompts but ", answers.size(), " answers");
  RLXF_REQUIRE(cfg.validation_fraction >= 0 && cfg.validation_fraction < 1,
               "SftConfig.validation_fraction must be in [0, 1), got ", cfg.validation_fraction);
  const std::size_t n_val = static_cast<std::size_t>(cfg.validation_fraction * static_cast<double>(prompts.size()));
  RLXF_REQUIRE(prompts.size() > n_val, "sft: no training pairs");
  // The last n_val pairs validate (callers shuffle beforehand if their order means anything).
  const std::size_t n_train = prompts.size() - n_val;
  const auto batch_of = [&](std::span<const std::size_t> rows) {
    std::vector<std::string> p, a;
    for (std::size_t r : rows) {
      p.push_back(prompts[r]);
      a.push_back(answers[r]);
    }
    return policy.encode(p, a, cfg.max_answer_tokens);
  };
  const auto step = [&](std::span<const std::size_t> rows) {
    return sft_loss(policy.policy(), batch_of(rows), true);
  };
  const auto validate = [&]() -> std::pair<double, double> {
    double total = 0;
    std::size_t batches = 0;
    std::vector<std::size_t> rows;
    for (std::size_t lo = n_train; lo < prompts.size(); lo += 64) {
      rows.clear();
      for (std::size_t r = lo; r < std::min(prompts.size(), lo + 64); ++r)
        rows.push_back(r);
      total += sft_loss(policy.policy(), batch_of(rows), false);
      ++batches;
    }
    const double nll = total / static_cast<double>(batches);
    return {nll, std::exp(-nll)};
  };
  return reward::run_training(policy.policy().parameters(false), n_train, cfg.train, step,
                              n_val ? std::function<std::pair<double, double>()>(validate)
                                    : std::function<std::pair<double, double>()>{},
                              progress);
}

}  // namespace rlxf::algo
