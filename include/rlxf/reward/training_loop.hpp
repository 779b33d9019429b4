#pragma once
// The optimisation loop shared by reward-model training (classification and pairwise): shuffled
// minibatches per epoch, AdamW with linear warm-up and linear decay to zero (the Hugging Face
// Trainer's default), global gradient clipping, evaluation on a validation set at an interval,
// early stopping on the validation loss with the best weights restored, progress reports, and a
// guard that stops on a non-finite loss or gradient.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/range.hpp"
#include "rlxf/core/parameter.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/model/decoder.hpp"
#include "rlxf/nn/embedding.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/clip.hpp"
#include "rlxf/optim/schedule.hpp"

namespace rlxf::reward {

struct TrainOptions {
  std::size_t epochs = 3;
  std::size_t batch_size = 32;
  double lr = 1e-3;             // peak learning rate (from-scratch models; fine-tuning wants ~1e-5)
  double weight_decay = 0.01;   // AdamW's decoupled decay, not applied to biases and norms
  double warmup_fraction = 0.05;
  double max_grad_norm = 1.0;   // global L2 clipping; 0 turns it off
  std::size_t eval_every = 0;   // steps between validations; 0 = at the end of every epoch
  std::size_t patience = 2;     // validations without a better loss before stopping; 0 = never
  std::size_t log_every = 50;   // steps between progress reports (0 = at validations only)
  std::uint64_t seed = 0;       // fixes the batch order
};

// One progress report. val_* are NaN between validations.
struct TrainProgress {
  std::size_t step = 0, total_steps = 0;
  double epoch = 0;        // fractional epochs done
  double train_loss = 0;   // mean loss of the steps since the previous report
  double val_loss = std::numeric_limits<double>::quiet_NaN();
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0;      // since training started
};
using ProgressFn = std::function<void(const TrainProgress&)>;

struct TrainReport {
  std::vector<TrainProgress> validations;
  std::size_t best = 0;           // index of the validation whose weights were kept
  std::size_t steps = 0;          // optimizer steps taken
  bool stopped_early = false;
  double seconds = 0;
};

// Token sequences padded into a batch: ids (B, T) with 0 in the padding and a mask (B, T).
struct TokenBatch {
  nn::Tokens ids;
  model::Mask mask;
};

template <class Sequence>
TokenBatch pad_batch(std::span<const Sequence* const> sequences) {
  std::size_t longest = 0;
  for (const Sequence* s : sequences) {
    RLXF_REQUIRE(!s->empty(), "pad_batch: an empty token sequence");
    longest = std::max(longest, s->size());
  }
  TokenBatch b{zeros<std::int32_t, 2>({sequences.size(), longest}),
               zeros<std::uint8_t, 2>({sequences.size(), longest})};
  for (std::size_t i = 0; i < sequences.size(); ++i)
    for (std::size_t t = 0; t < sequences[i]->size(); ++t) {
      b.ids(i, t) = (*sequences[i])[t];
      b.mask(i, t) = 1;
    }
  return b;
}

// Runs the loop over `params` (a model's parameters() on any backend). `step(batch)` computes
// the loss of the examples with these indices and accumulates its gradient into the
// parameters (they are zeroed before each call); `validate()` returns {loss, accuracy} on the
// validation set, or is empty for none.
template <class List, class StepFn>
TrainReport run_training(const List& params, std::size_t n_examples,
                         const TrainOptions& opt, StepFn&& step,
                         const std::function<std::pair<double, double>()>& validate,
                         const ProgressFn& progress) {
  RLXF_REQUIRE(n_examples > 0, "reward training: the training set is empty");
  RLXF_REQUIRE(opt.epochs > 0, "TrainOptions.epochs must be > 0");
  RLXF_REQUIRE(opt.batch_size > 0, "TrainOptions.batch_size must be > 0");
  RLXF_REQUIRE(opt.warmup_fraction >= 0 && opt.warmup_fraction < 1,
               "TrainOptions.warmup_fraction must be in [0, 1), got ", opt.warmup_fraction);
  RLXF_REQUIRE(std::isfinite(opt.lr) && opt.lr > 0, "TrainOptions.lr must be > 0, got ", opt.lr);
  require_in("TrainOptions.weight_decay", opt.weight_decay, Range::closed(0, 1));
  require_in("TrainOptions.max_grad_norm", opt.max_grad_norm, Range::closed(0, 1e6));  // 0 = no clipping
  const std::size_t per_epoch = (n_examples + opt.batch_size - 1) / opt.batch_size;
  const std::size_t total = per_epoch * opt.epochs;
  const std::size_t eval_every = opt.eval_every ? opt.eval_every : per_epoch;
  const auto warmup = static_cast<std::size_t>(opt.warmup_fraction * static_cast<double>(total));
  const optim::LinearDecay schedule(opt.lr, warmup, total);
  using AdamW = optim::AdamWFor<List>;
  AdamW adamw(params, {.lr = opt.lr, .weight_decay = opt.weight_decay}, optim::decay_except_bias_and_norm);

  TrainReport report;
  std::vector<std::vector<typename AdamW::A>> best_weights;
  double best_loss = std::numeric_limits<double>::infinity();
  std::size_t since_best = 0;
  const auto start = std::chrono::steady_clock::now();
  const auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  double loss_sum = 0;
  std::size_t loss_count = 0;
  const auto report_now = [&](bool with_validation) {
    TrainProgress p{.step = report.steps,
                    .total_steps = total,
                    .epoch = static_cast<double>(report.steps) / static_cast<double>(per_epoch),
                    .train_loss = loss_count ? loss_sum / static_cast<double>(loss_count)
                                             : std::numeric_limits<double>::quiet_NaN(),
                    .seconds = seconds()};
    loss_sum = 0, loss_count = 0;
    if (with_validation) {
      std::tie(p.val_loss, p.val_accuracy) = validate();
      RLXF_REQUIRE(std::isfinite(p.val_loss), "reward training: validation loss is ", p.val_loss,
                   " at step ", report.steps);
      report.validations.push_back(p);
      if (p.val_loss < best_loss) {
        best_loss = p.val_loss;
        report.best = report.validations.size() - 1;
        since_best = 0;
        best_weights.clear();
        for (const auto& ref : params)
          best_weights.push_back(nn::values_of(*ref.param));
      } else {
        ++since_best;
      }
    }
    if (progress)
      progress(p);
  };

  const auto restore = [&](const std::vector<std::vector<typename AdamW::A>>& weights) {
    for (std::size_t i = 0; i < weights.size(); ++i)
      nn::set_values(*params[i].param, std::span<const typename AdamW::A>(weights[i]));
  };
  // On a non-finite loss or gradient: back to the best validated weights, then the error.
  const auto diverged = [&](const char* what, double value, std::size_t epoch) {
    restore(best_weights);
    fail("reward training: the ", what, " is ", value, " at step ", report.steps, " (epoch ",
         epoch, "); ", best_weights.empty() ? "no validation had run yet"
                                            : "the weights of the best validation were restored");
  };

  std::vector<std::size_t> order(n_examples);
  std::vector<std::size_t> batch;
  for (std::size_t epoch = 0; epoch < opt.epochs && !report.stopped_early; ++epoch) {
    std::iota(order.begin(), order.end(), std::size_t{0});
    Rng rng(opt.seed, 0x5245574152440000ULL + epoch);  // one stream per epoch
    for (std::size_t i = n_examples; i-- > 1;)
      std::swap(order[i], order[rng.next_below(static_cast<std::uint32_t>(i + 1))]);
    for (std::size_t lo = 0; lo < n_examples; lo += opt.batch_size) {
      batch.assign(order.begin() + static_cast<std::ptrdiff_t>(lo),
                   order.begin() + static_cast<std::ptrdiff_t>(std::min(n_examples, lo + opt.batch_size)));
      double loss = 0;
      {  // the step's device memory, planned per batch size (and padded length: the plan's
         // first allocation), validation left out; a no-op on the CPU
        const auto planned = nn::planned_step(params, batch.size());
        adamw.zero_grad();
        loss = step(std::span<const std::size_t>(batch));
        if (!std::isfinite(loss))
          diverged("loss", loss, epoch);
        const double norm = optim::grad_norm(params);
        if (!std::isfinite(norm))
          diverged("gradient norm", norm, epoch);
        if (opt.max_grad_norm > 0)
          optim::clip_grad_norm(params, opt.max_grad_norm);
        adamw.set_lr(schedule(adamw.steps()));
        adamw.step();
      }
      ++report.steps;
      loss_sum += loss, ++loss_count;
      const bool validate_now = validate && report.steps % eval_every == 0;
      if (validate_now || (opt.log_every && report.steps % opt.log_every == 0))
        report_now(validate_now);
      if (validate_now && opt.patience && since_best >= opt.patience) {
        report.stopped_early = true;
        break;
      }
    }
  }
  if (validate && report.steps % eval_every != 0)
    report_now(true);
  restore(best_weights);
  report.seconds = seconds();
  return report;
}

}  // namespace rlxf::reward
