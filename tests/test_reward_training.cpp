// rlxf::reward training: the shared loop (run_training) on a toy problem whose every step and
// validation the test scripts, pad_batch, train_classifier / train_pairwise on learnable toy
// token tasks (token 7 present or not), the losses of their first step against the loss
// functions evaluated independently, MonaRewardModel (encode, score against a recomputation,
// save / load, errors), the RewardModel concept, and the "rlxf_pooling" config key.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "error_of.hpp"
#include "temp_dir.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/data/mona.hpp"
#include "rlxf/model/checkpoint.hpp"
#include "rlxf/model/hf_config.hpp"
#include "rlxf/reward/calibration.hpp"
#include "rlxf/reward/classifier_training.hpp"
#include "rlxf/reward/losses.hpp"
#include "rlxf/reward/mona_reward_model.hpp"
#include "rlxf/reward/pairwise_training.hpp"
#include "rlxf/reward/training_loop.hpp"
#include "rlxf/tokenize/bpe.hpp"

using namespace rlxf;
using reward::LabelledSequence;
using reward::PreferencePair;
using reward::TrainOptions;
using reward::TrainProgress;
using rlxf::test::error_of;
namespace fs = std::filesystem;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

using Ids = std::vector<std::int32_t>;
using IdsSpan = std::span<const Ids* const>;
using Validate = std::function<std::pair<double, double>()>;

// A fresh directory under the system temp dir, removed at scope exit.
using rlxf::test::TempDir;

// ---- the toy problem of run_training: one parameter vector, loss 0.5 ||w - target||^2 ----

struct Toy {
  Parameter<double> w{std::vector<std::size_t>{3}};
  std::vector<double> target{1.0, -2.0, 0.5};
  ParameterList<double> params() { return {{"w", &w}}; }
  std::vector<double> values() const { return {w.value.begin(), w.value.end()}; }
  // Accumulates the gradient of the quadratic loss and returns the loss.
  double quadratic_step() {
    double loss = 0;
    for (std::size_t j = 0; j < 3; ++j) {
      const double r = w.value(j) - target[j];
      loss += 0.5 * r * r;
      w.grad(j) += r;
    }
    return loss;
  }
};

// A validation that returns scripted losses in turn and snapshots the weights it saw.
struct Scripted {
  const Toy* toy;
  std::vector<double> losses;
  std::vector<std::vector<double>> snapshots;
  std::pair<double, double> operator()() {
    REQUIRE(snapshots.size() < losses.size());
    snapshots.push_back(toy->values());
    return {losses[snapshots.size() - 1], 0.25 * static_cast<double>(snapshots.size())};
  }
};

std::size_t ceil_div(std::size_t a, std::size_t b) { return (a + b - 1) / b; }

// ---- toy token tasks ----

constexpr std::int32_t kSignal = 7;
constexpr std::size_t kVocab = 16;

// Random tokens in [2, 16), length 3..10.
Ids random_ids(Rng& rng, bool with_signal) {
  const std::size_t len = 3 + rng.next_below(8);
  Ids ids(len);
  for (auto& t : ids) {
    do {
      t = static_cast<std::int32_t>(2 + rng.next_below(14));
    } while (!with_signal && t == kSignal);
  }
  if (with_signal && std::find(ids.begin(), ids.end(), kSignal) == ids.end())
    ids[rng.next_below(static_cast<std::uint32_t>(len))] = kSignal;
  return ids;
}

// Label 1 when token 7 occurs; about half the examples carry it.
std::vector<LabelledSequence> token7_examples(std::size_t n, std::uint64_t seed) {
  Rng rng(seed, 11);
  std::vector<LabelledSequence> out;
  for (std::size_t i = 0; i < n; ++i) {
    const bool pos = rng.next_uniform() < 0.5f;
    Ids ids = random_ids(rng, pos);
    const bool has = std::find(ids.begin(), ids.end(), kSignal) != ids.end();
    out.push_back({std::move(ids), static_cast<std::uint8_t>(has)});
  }
  return out;
}

// Chosen contains token 7, rejected does not.
std::vector<PreferencePair> token7_pairs(std::size_t n, std::uint64_t seed) {
  Rng rng(seed, 12);
  std::vector<PreferencePair> out;
  for (std::size_t i = 0; i < n; ++i) {
    Ids c = random_ids(rng, true);
    Ids r = random_ids(rng, false);
    out.push_back({std::move(c), std::move(r), 0.0});
  }
  return out;
}

model::EncoderConfig tiny_config(std::size_t vocab, model::Pooling pooling, double init_std = 0.02,
                                 std::size_t max_positions = 16) {
  return {.vocab_size = vocab,
          .max_positions = max_positions,
          .type_vocab_size = 1,
          .d_model = 16,
          .n_layers = 1,
          .n_heads = 2,
          .d_hidden = 32,
          .pooling = pooling,
          .init_std = init_std};
}

// logits (1, 1, C) of one sequence, unpadded and without a mask.
template <class B>
std::vector<double> direct_logits(const model::BasicSequenceClassifier<B>& m, const Ids& ids) {
  nn::Tokens t = zeros<std::int32_t, 2>({1, ids.size()});
  for (std::size_t j = 0; j < ids.size(); ++j) t(0, j) = ids[j];
  typename model::BasicSequenceClassifier<B>::Cache cache;
  const auto logits = m.forward(t, nullptr, nullptr, cache);
  std::vector<double> out;
  for (std::size_t c = 0; c < m.classes(); ++c) out.push_back(static_cast<double>(logits(0, 0, c)));
  return out;
}

double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<const Ids*> pointers(const std::vector<LabelledSequence>& v) {
  std::vector<const Ids*> p;
  for (const auto& e : v) p.push_back(&e.ids);
  return p;
}

}  // namespace

// =========================================================================================
// run_training on the toy problem
// =========================================================================================

TEST_CASE("run_training: early stopping after `patience` validations, best weights restored") {
  Toy toy;
  Scripted val{&toy, {1.0, 0.5, 0.7, 0.6, 0.4, 0.3}, {}};
  std::vector<TrainProgress> reports;
  std::size_t calls = 0;
  const TrainOptions opt{.epochs = 5, .batch_size = 3, .lr = 0.05, .patience = 2, .log_every = 0, .seed = 4};
  // n = 10, batch 3: 4 steps per epoch, validation at the end of each epoch (steps 4, 8, 12, ...)
  const auto report = reward::run_training(
      toy.params(), 10, opt,
      [&](std::span<const std::size_t>) {
        ++calls;
        return toy.quadratic_step();
      },
      Validate(std::ref(val)), [&](const TrainProgress& p) { reports.push_back(p); });

  // Losses 1.0, 0.5 (best), 0.7 (1 without improvement), 0.6 (2): stop at the 4th validation.
  CHECK(report.stopped_early);
  REQUIRE(report.validations.size() == 4);
  CHECK(report.best == 1);
  CHECK(report.steps == 16);
  CHECK(calls == 16);
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(report.validations[k].step == 4 * (k + 1));
    CHECK(report.validations[k].total_steps == 20);
    CHECK(report.validations[k].epoch == doctest::Approx(static_cast<double>(k + 1)));
    CHECK(report.validations[k].val_loss == val.losses[k]);
    CHECK(report.validations[k].val_accuracy == 0.25 * static_cast<double>(k + 1));
  }
  // The weights after return are those seen by the best validation, not the last ones.
  REQUIRE(val.snapshots.size() == 4);
  CHECK(toy.values() == val.snapshots[1]);
  CHECK(val.snapshots[3] != val.snapshots[1]);
  // log_every = 0: progress only at validations, each carrying its validation.
  REQUIRE(reports.size() == 4);
  for (std::size_t k = 0; k < 4; ++k) {
    CHECK(reports[k].step == 4 * (k + 1));
    CHECK(reports[k].val_loss == val.losses[k]);
    CHECK(std::isfinite(reports[k].train_loss));
  }
}

TEST_CASE("run_training: patience 0 never stops, an improvement resets the count") {
  Toy toy;
  // 1.0, 0.9 (best), 1.1, 0.8 (best, reset), 1.2, 1.3: with patience 2 the stop comes at the 6th.
  Scripted val{&toy, {1.0, 0.9, 1.1, 0.8, 1.2, 1.3, 1.4, 1.5}, {}};
  const TrainOptions opt{.epochs = 8, .batch_size = 5, .lr = 0.05, .patience = 2, .log_every = 0};
  const auto report = reward::run_training(
      toy.params(), 10, opt, [&](std::span<const std::size_t>) { return toy.quadratic_step(); },
      Validate(std::ref(val)), {});
  CHECK(report.stopped_early);
  CHECK(report.validations.size() == 6);
  CHECK(report.best == 3);
  CHECK(toy.values() == val.snapshots[3]);

  Toy toy2;
  Scripted val2{&toy2, std::vector<double>(8, 1.0), {}};  // never improves after the first
  const auto never = reward::run_training(
      toy2.params(), 10, {.epochs = 8, .batch_size = 5, .lr = 0.05, .patience = 0, .log_every = 0},
      [&](std::span<const std::size_t>) { return toy2.quadratic_step(); }, Validate(std::ref(val2)), {});
  CHECK_FALSE(never.stopped_early);
  CHECK(never.steps == 16);
  CHECK(never.validations.size() == 8);
  CHECK(never.best == 0);  // ties are not improvements
  CHECK(toy2.values() == val2.snapshots[0]);
}

TEST_CASE("run_training: step and validation counts match the closed form, each epoch is a permutation") {
  struct Case {
    std::size_t n, batch, epochs, eval_every;
  };
  for (const Case c : {Case{10, 3, 3, 0}, Case{10, 3, 3, 5}, Case{7, 7, 2, 0}, Case{7, 10, 3, 2},
                       Case{1, 1, 4, 3}, Case{33, 4, 2, 100}}) {
    CAPTURE(c.n);
    CAPTURE(c.batch);
    CAPTURE(c.epochs);
    CAPTURE(c.eval_every);
    Toy toy;
    Scripted val{&toy, std::vector<double>(100, 0.0), {}};
    for (std::size_t k = 0; k < val.losses.size(); ++k) val.losses[k] = 1.0 / static_cast<double>(k + 1);
    std::vector<std::vector<std::size_t>> batches;
    const auto report = reward::run_training(
        toy.params(), c.n,
        {.epochs = c.epochs, .batch_size = c.batch, .lr = 0.01, .eval_every = c.eval_every, .log_every = 0,
         .seed = 9},
        [&](std::span<const std::size_t> b) {
          batches.emplace_back(b.begin(), b.end());
          return toy.quadratic_step();
        },
        Validate(std::ref(val)), {});
    const std::size_t per_epoch = ceil_div(c.n, c.batch);
    const std::size_t total = per_epoch * c.epochs;
    const std::size_t every = c.eval_every ? c.eval_every : per_epoch;
    CHECK(report.steps == total);
    CHECK_FALSE(report.stopped_early);
    REQUIRE(batches.size() == total);
    // Validations at every multiple of eval_every, plus one at the end when it is not one.
    std::vector<std::size_t> expected_steps;
    for (std::size_t s = every; s <= total; s += every) expected_steps.push_back(s);
    if (total % every != 0) expected_steps.push_back(total);
    REQUIRE(report.validations.size() == expected_steps.size());
    for (std::size_t k = 0; k < expected_steps.size(); ++k) CHECK(report.validations[k].step == expected_steps[k]);
    CHECK(report.best == expected_steps.size() - 1);  // the scripted losses keep decreasing
    // Every epoch visits every example once, in batches of `batch` (the last one shorter).
    for (std::size_t e = 0; e < c.epochs; ++e) {
      std::vector<std::size_t> seen;
      for (std::size_t k = 0; k < per_epoch; ++k) {
        const auto& b = batches[e * per_epoch + k];
        CHECK(b.size() == (k + 1 < per_epoch ? c.batch : c.n - (per_epoch - 1) * c.batch));
        seen.insert(seen.end(), b.begin(), b.end());
      }
      std::sort(seen.begin(), seen.end());
      std::vector<std::size_t> all(c.n);
      std::iota(all.begin(), all.end(), std::size_t{0});
      CHECK(seen == all);
    }
  }
}

TEST_CASE("run_training: the batch order is fixed by the seed and changes with it") {
  const auto order = [](std::uint64_t seed) {
    Toy toy;
    std::vector<std::size_t> flat;
    reward::run_training(
        toy.params(), 20, {.epochs = 2, .batch_size = 4, .lr = 0.01, .log_every = 0, .seed = seed},
        [&](std::span<const std::size_t> b) {
          flat.insert(flat.end(), b.begin(), b.end());
          return toy.quadratic_step();
        },
        {}, {});
    return flat;
  };
  const auto a = order(1), b = order(1), c = order(2);
  CHECK(a == b);
  CHECK(a != c);
  // The two epochs of one run are shuffled differently.
  CHECK(std::vector<std::size_t>(a.begin(), a.begin() + 20) != std::vector<std::size_t>(a.begin() + 20, a.end()));
}

TEST_CASE("run_training: progress at log_every and at validations, with the mean loss since the last report") {
  Toy toy;
  Scripted val{&toy, {3.0, 2.0, 1.0}, {}};
  std::vector<double> step_losses;
  std::vector<TrainProgress> reports;
  // n = 10, batch 3, 3 epochs: 12 steps (4 per epoch); validations at 5, 10 and the end (12);
  // logs at 2, 4, 6, 8, 10, 12.
  const auto report = reward::run_training(
      toy.params(), 10, {.epochs = 3, .batch_size = 3, .lr = 0.05, .eval_every = 5, .patience = 0, .log_every = 2},
      [&](std::span<const std::size_t>) {
        step_losses.push_back(toy.quadratic_step());
        return step_losses.back();
      },
      Validate(std::ref(val)), [&](const TrainProgress& p) { reports.push_back(p); });
  REQUIRE(step_losses.size() == 12);
  CHECK(report.validations.size() == 3);
  const std::vector<std::size_t> steps{2, 4, 5, 6, 8, 10, 12, 12};
  const std::vector<bool> validated{false, false, true, false, false, true, false, true};
  REQUIRE(reports.size() == steps.size());
  std::size_t prev = 0;
  std::size_t v = 0;
  for (std::size_t k = 0; k < reports.size(); ++k) {
    CAPTURE(k);
    const auto& p = reports[k];
    CHECK(p.step == steps[k]);
    CHECK(p.total_steps == 12);
    CHECK(p.epoch == doctest::Approx(static_cast<double>(steps[k]) / 4.0));
    CHECK(p.seconds >= 0);
    if (validated[k]) {
      CHECK(p.val_loss == val.losses[v]);
      ++v;
    } else {
      CHECK(std::isnan(p.val_loss));
      CHECK(std::isnan(p.val_accuracy));
    }
    if (steps[k] == prev) {
      CHECK(std::isnan(p.train_loss));  // no step since the previous report
    } else {
      double sum = 0;
      for (std::size_t s = prev; s < steps[k]; ++s) sum += step_losses[s];
      CHECK(p.train_loss == doctest::Approx(sum / static_cast<double>(steps[k] - prev)).epsilon(1e-14));
    }
    prev = steps[k];
  }
}

TEST_CASE("run_training: a non-finite loss or gradient stops with the best validated weights restored") {
  const TrainOptions opt{.epochs = 3, .batch_size = 2, .lr = 0.05, .patience = 0, .log_every = 0};
  // n = 8, batch 2: 4 steps per epoch, validations after steps 4 and 8.
  SUBCASE("NaN loss") {
    Toy toy;
    Scripted val{&toy, {0.5, 0.9, 0.1}, {}};
    std::size_t calls = 0;
    const std::string msg = error_of([&] {
      reward::run_training(
          toy.params(), 8, opt,
          [&](std::span<const std::size_t>) {
            const double loss = toy.quadratic_step();
            return calls++ == 9 ? std::numeric_limits<double>::quiet_NaN() : loss;
          },
          Validate(std::ref(val)), {});
    });
    INFO(msg);
    CHECK(contains(msg, "loss is nan at step 9 (epoch 2)"));
    CHECK(contains(msg, "the weights of the best validation were restored"));
    CHECK(calls == 10);
    REQUIRE(val.snapshots.size() == 2);
    CHECK(toy.values() == val.snapshots[0]);  // validation 0 (loss 0.5) beat validation 1 (0.9)
    CHECK(toy.values() != val.snapshots[1]);
  }
  SUBCASE("infinite gradient") {
    Toy toy;
    Scripted val{&toy, {0.9, 0.5, 0.1}, {}};
    std::size_t calls = 0;
    const std::string msg = error_of([&] {
      reward::run_training(
          toy.params(), 8, opt,
          [&](std::span<const std::size_t>) {
            const double loss = toy.quadratic_step();
            if (calls++ == 10) toy.w.grad(1) = std::numeric_limits<double>::infinity();
            return loss;
          },
          Validate(std::ref(val)), {});
    });
    INFO(msg);
    CHECK(contains(msg, "gradient norm is inf at step 10 (epoch 2)"));
    CHECK(contains(msg, "the weights of the best validation were restored"));
    REQUIRE(val.snapshots.size() == 2);
    CHECK(toy.values() == val.snapshots[1]);
    CHECK(toy.values() != val.snapshots[0]);
  }
  SUBCASE("before any validation") {
    Toy toy;
    Scripted val{&toy, {0.5}, {}};
    std::size_t calls = 0;
    const std::string msg = error_of([&] {
      reward::run_training(
          toy.params(), 8, opt,
          [&](std::span<const std::size_t>) {
            const double loss = toy.quadratic_step();
            return calls++ == 2 ? -std::numeric_limits<double>::infinity() : loss;
          },
          Validate(std::ref(val)), {});
    });
    INFO(msg);
    CHECK(contains(msg, "loss is -inf at step 2 (epoch 0)"));
    CHECK(contains(msg, "no validation had run yet"));
    CHECK(val.snapshots.empty());
  }
  SUBCASE("non-finite validation loss") {
    Toy toy;
    Scripted val{&toy, {0.5, std::numeric_limits<double>::quiet_NaN()}, {}};
    const std::string msg = error_of([&] {
      reward::run_training(
          toy.params(), 8, opt, [&](std::span<const std::size_t>) { return toy.quadratic_step(); },
          Validate(std::ref(val)), {});
    });
    INFO(msg);
    CHECK(contains(msg, "validation loss is nan at step 8"));
  }
}

TEST_CASE("run_training: bad options are refused before any step") {
  Toy toy;
  std::size_t calls = 0;
  const auto run = [&](TrainOptions o, std::size_t n = 10) {
    return error_of([&] {
      reward::run_training(
          toy.params(), n, o,
          [&](std::span<const std::size_t>) {
            ++calls;
            return toy.quadratic_step();
          },
          {}, {});
    });
  };
  CHECK(contains(run({.epochs = 0}), "TrainOptions.epochs must be > 0"));
  CHECK(contains(run({.batch_size = 0}), "TrainOptions.batch_size must be > 0"));
  CHECK(contains(run({.lr = 0}), "TrainOptions.lr must be > 0, got 0"));
  CHECK(contains(run({.lr = -1e-3}), "TrainOptions.lr must be > 0, got -0.001"));
  CHECK(contains(run({.lr = std::numeric_limits<double>::quiet_NaN()}), "TrainOptions.lr must be > 0"));
  CHECK(contains(run({.lr = std::numeric_limits<double>::infinity()}), "TrainOptions.lr must be > 0"));
  CHECK(contains(run({.warmup_fraction = 1.0}), "TrainOptions.warmup_fraction must be in [0, 1), got 1"));
  CHECK(contains(run({.warmup_fraction = -0.1}), "TrainOptions.warmup_fraction must be in [0, 1)"));
  CHECK(contains(run({.warmup_fraction = std::numeric_limits<double>::quiet_NaN()}),
                 "TrainOptions.warmup_fraction must be in [0, 1)"));
  CHECK(contains(run({}, 0), "the training set is empty"));
  CHECK(contains(run({.weight_decay = -1}), "weight_decay"));
  CHECK(calls == 0);
  // A warm-up fraction just below 1 still leaves a decay phase.
  CHECK(run({.epochs = 1, .batch_size = 1, .warmup_fraction = 0.99}) == "");
  CHECK(calls == 10);
}

TEST_CASE("run_training: AdamW follows linear warm-up then linear decay to zero") {
  // A constant gradient of 1 makes every AdamW update exactly lr_s / (1 + eps) (bias-corrected
  // moments of a constant are the constant), so the parameter's trajectory reads out lr_s.
  Toy toy;
  std::vector<double> before;  // w[0] before each step
  const std::size_t total = 12;
  const double lr = 0.1;
  reward::run_training(toy.params(), total,
                       {.epochs = 1, .batch_size = 1, .lr = lr, .weight_decay = 0, .warmup_fraction = 0.25,
                        .max_grad_norm = 0, .log_every = 0},
                       [&](std::span<const std::size_t>) {
                         before.push_back(toy.w.value(0));
                         toy.w.grad.fill(1.0);
                         return 0.0;
                       },
                       {}, {});
  before.push_back(toy.w.value(0));
  REQUIRE(before.size() == total + 1);
  const std::size_t warmup = 3;  // floor(0.25 * 12)
  for (std::size_t s = 0; s < total; ++s) {
    CAPTURE(s);
    // Hugging Face get_linear_schedule_with_warmup, written out.
    const double expected = s < warmup ? lr * static_cast<double>(s) / static_cast<double>(warmup)
                                       : lr * static_cast<double>(total - s) / static_cast<double>(total - warmup);
    const double taken = before[s] - before[s + 1];
    CHECK(taken == doctest::Approx(expected / (1 + 1e-8)).epsilon(1e-12));
  }
  CHECK(before[0] == before[1]);  // update 0 runs with lr 0
  // sum_s lr_s = lr (0 + 1/3 + 2/3) + lr (9 + 8 + ... + 1) / 9 = 6 lr
  CHECK(before[0] - before[total] == doctest::Approx(6 * lr).epsilon(1e-7));
}

// =========================================================================================
// pad_batch
// =========================================================================================

TEST_CASE("pad_batch: (B, longest) ids with zero padding and a mask of the real tokens") {
  const Ids a{5, 6, 7}, b{9}, c{3, 4};
  const std::vector<const Ids*> seqs{&a, &b, &c};
  const auto batch = reward::pad_batch(IdsSpan(seqs));
  REQUIRE(batch.ids.shape(0) == 3);
  REQUIRE(batch.ids.shape(1) == 3);
  REQUIRE(batch.mask.shape(0) == 3);
  REQUIRE(batch.mask.shape(1) == 3);
  const std::int32_t ids[3][3] = {{5, 6, 7}, {9, 0, 0}, {3, 4, 0}};
  const std::uint8_t mask[3][3] = {{1, 1, 1}, {1, 0, 0}, {1, 1, 0}};
  for (std::size_t i = 0; i < 3; ++i)
    for (std::size_t t = 0; t < 3; ++t) {
      CHECK(batch.ids(i, t) == ids[i][t]);
      CHECK(batch.mask(i, t) == mask[i][t]);
    }
  const Ids empty;
  const std::vector<const Ids*> bad{&a, &empty};
  CHECK(contains(error_of([&] { reward::pad_batch(IdsSpan(bad)); }), "pad_batch: an empty token sequence"));
}

// =========================================================================================
// train_classifier
// =========================================================================================

namespace {
const model::EncoderConfig kClfConfig = tiny_config(kVocab, model::Pooling::mean);
const reward::ClassifierTrainConfig kClfTrain{
    .train = {.epochs = 12, .batch_size = 16, .lr = 1e-2, .warmup_fraction = 0.05, .patience = 3, .seed = 3}};
}  // namespace

TEST_CASE("train_classifier: learns 'token 7 occurs', met_logits, temperature, determinism") {
  const auto train = token7_examples(600, 1), test = token7_examples(300, 3);
  // Every 8th validation label flipped: the validation set is not separable, so the fitted
  // temperature is an interior minimum of its NLL (not the lower bound).
  auto val = token7_examples(160, 2);
  for (std::size_t i = 0; i < val.size(); i += 8) val[i].label ^= 1;
  Rng init(5, 1);
  model::SequenceClassifier<float> clf(kClfConfig, 2, init);
  const auto fit = reward::train_classifier(clf, std::span<const LabelledSequence>(train),
                                            std::span<const LabelledSequence>(val), kClfTrain);
  CHECK(fit.report.steps > 0);
  CHECK(fit.report.validations.size() >= 1);
  CHECK(fit.report.best < fit.report.validations.size());
  // The kept weights are those of the best validation: re-validating gives its loss.
  const auto z_val = reward::met_logits(clf, std::span<const LabelledSequence>(val));
  std::vector<std::uint8_t> y_val;
  for (const auto& e : val) y_val.push_back(e.label);
  double nll = 0;
  for (std::size_t i = 0; i < z_val.size(); ++i) nll += softplus(y_val[i] ? -z_val[i] : z_val[i]);
  nll /= static_cast<double>(z_val.size());
  CHECK(nll == doctest::Approx(fit.report.validations[fit.report.best].val_loss).epsilon(1e-12));
  for (const auto& v : fit.report.validations) CHECK(v.val_loss >= fit.report.validations[fit.report.best].val_loss);

  // Held-out accuracy.
  const auto z = reward::met_logits(clf, std::span<const LabelledSequence>(test));
  std::size_t correct = 0;
  for (std::size_t i = 0; i < z.size(); ++i) correct += (z[i] > 0) == (test[i].label == 1);
  const double accuracy = static_cast<double>(correct) / static_cast<double>(z.size());
  INFO("held-out accuracy ", accuracy, " after ", fit.report.steps, " steps");
  CHECK(accuracy > 0.95);

  // met_logits = z1 - z0 of each sequence run alone (no padding, no mask), in small batches too.
  const auto ptrs = pointers(test);
  const auto z_small = reward::met_logits(clf, IdsSpan(ptrs), 7);
  for (std::size_t i = 0; i < 40; ++i) {
    const auto l = direct_logits(clf, test[i].ids);
    CHECK(z[i] == doctest::Approx(l[1] - l[0]).epsilon(1e-5).scale(1));
    CHECK(z_small[i] == doctest::Approx(z[i]).epsilon(1e-5).scale(1));
  }

  // The temperature is the minimiser of the validation NLL of sigmoid(z / T).
  const auto tfit = reward::fit_temperature_report(z_val, y_val);
  CHECK(fit.temperature == tfit.temperature);
  const double T = fit.temperature;
  REQUIRE_FALSE(tfit.at_bound);
  {
    const auto mean_nll = [&](double t) {
      double s = 0;
      for (std::size_t i = 0; i < z_val.size(); ++i) s += softplus(y_val[i] ? -z_val[i] / t : z_val[i] / t);
      return s / static_cast<double>(z_val.size());
    };
    const double h = 1e-4 * T;
    const double d = (mean_nll(T + h) - mean_nll(T - h)) / (2 * h);
    const double scale = (mean_nll(T + 0.1 * T) - mean_nll(T)) / (0.1 * T);
    INFO("T ", T, " dNLL/dT ", d, " slope at +10% ", scale);
    CHECK(std::abs(d) < 1e-6 + 1e-4 * std::abs(scale));
    CHECK(mean_nll(T) <= mean_nll(0.8 * T));
    CHECK(mean_nll(T) <= mean_nll(1.25 * T));
  }
  const auto p = reward::met_probabilities(z, T);
  for (std::size_t i = 0; i < 20; ++i) CHECK(p[i] == doctest::Approx(sigmoid(z[i] / T)).epsilon(1e-14));

  // Determinism: the same seeds give bit-identical logits.
  Rng init2(5, 1);
  model::SequenceClassifier<float> clf2(kClfConfig, 2, init2);
  const auto fit2 = reward::train_classifier(clf2, std::span<const LabelledSequence>(train),
                                             std::span<const LabelledSequence>(val), kClfTrain);
  CHECK(fit2.report.steps == fit.report.steps);
  CHECK(fit2.temperature == fit.temperature);
  CHECK(reward::met_logits(clf2, std::span<const LabelledSequence>(test)) == z);
}

TEST_CASE("train_classifier: bad labels and a classifier without two classes are refused") {
  auto train = token7_examples(20, 4), val = token7_examples(10, 5);
  Rng init(5, 1);
  model::SequenceClassifier<float> clf(kClfConfig, 2, init);
  std::size_t reports = 0;
  const auto count = [&](const TrainProgress&) { ++reports; };
  train[5].label = 3;
  CHECK(contains(error_of([&] {
                   reward::train_classifier(clf, std::span<const LabelledSequence>(train),
                                            std::span<const LabelledSequence>(val), kClfTrain, count);
                 }),
                 "example 5 has label 3, expected 0 or 1"));
  train[5].label = 1;
  val[2].label = 2;
  const std::string val_msg = error_of([&] {
    reward::train_classifier(clf, std::span<const LabelledSequence>(train), std::span<const LabelledSequence>(val),
                             kClfTrain, count);
  });
  INFO(val_msg);
  CHECK(contains(val_msg, "validation example 2 has label 2, expected 0 or 1"));
  CHECK(reports == 0);  // refused before training
  val[2].label = 0;

  Rng init1(5, 1);
  model::SequenceClassifier<float> one(kClfConfig, 1, init1);
  const std::string msg = error_of([&] {
    reward::train_classifier(one, std::span<const LabelledSequence>(train), std::span<const LabelledSequence>(val));
  });
  CHECK(contains(msg, "the classifier has 1 classes, expected 2 (Non-MET, MET)"));
  CHECK(contains(error_of([&] { reward::met_logits(one, std::span<const LabelledSequence>(train)); }),
                 "expected 2 (Non-MET, MET)"));
  CHECK(contains(error_of([&] {
                   reward::train_classifier(clf, std::span<const LabelledSequence>(),
                                            std::span<const LabelledSequence>(val));
                 }),
                 "the training set is empty"));
}

TEST_CASE("train_classifier: the first step's loss is the (class-weighted) cross-entropy of the whole set") {
  // One batch holding the whole (imbalanced) training set, so the loss reported after step 1 is
  // the loss of the initial model on every example.
  auto all = token7_examples(60, 6);
  std::vector<LabelledSequence> train;
  std::size_t n1 = 0;
  for (auto& e : all)
    if (e.label == 0 || n1 < 8) {
      n1 += e.label;
      train.push_back(e);
    }
  const std::size_t n = train.size(), n0 = n - n1;
  REQUIRE(n1 == 8);
  REQUIRE(n0 > 2 * n1);
  const auto cfg = tiny_config(kVocab, model::Pooling::mean, 0.5);
  for (const bool balance : {false, true}) {
    CAPTURE(balance);
    Rng init(8, 2);
    model::SequenceClassifier<float> reference(cfg, 2, init);
    Rng init_again(8, 2);
    model::SequenceClassifier<float> clf(cfg, 2, init_again);
    double w[2] = {1, 1};
    if (balance) {
      w[0] = static_cast<double>(n) / (2.0 * static_cast<double>(n0));
      w[1] = static_cast<double>(n) / (2.0 * static_cast<double>(n1));
    }
    double sum = 0, sum_w = 0, plain = 0;
    for (const auto& e : train) {
      const auto l = direct_logits(reference, e.ids);
      const double nll_i = softplus(l[1 - e.label] - l[e.label]);
      sum += w[e.label] * nll_i;
      sum_w += w[e.label];
      plain += nll_i;
    }
    const double expected = sum / sum_w;
    plain /= static_cast<double>(n);
    std::vector<TrainProgress> reports;
    reward::train_classifier(clf, std::span<const LabelledSequence>(train), std::span<const LabelledSequence>(),
                             {.train = {.epochs = 1, .batch_size = n, .log_every = 1}, .balance_classes = balance},
                             [&](const TrainProgress& p) { reports.push_back(p); });
    REQUIRE(reports.size() == 1);
    INFO("expected ", expected, " unweighted ", plain, " reported ", reports[0].train_loss);
    CHECK(reports[0].train_loss == doctest::Approx(expected).epsilon(1e-5));
    if (balance) CHECK(std::abs(expected - plain) > 1e-2);  // the weighting is visible
  }
}

// =========================================================================================
// train_pairwise
// =========================================================================================

TEST_CASE("train_pairwise: learns to prefer sequences with token 7") {
  const auto train = token7_pairs(400, 1), val = token7_pairs(100, 2), test = token7_pairs(200, 3);
  Rng init(6, 1);
  model::SequenceClassifier<float> scorer(kClfConfig, 1, init);
  const auto report = reward::train_pairwise(
      scorer, std::span<const PreferencePair>(train), std::span<const PreferencePair>(val),
      {.train = {.epochs = 8, .batch_size = 16, .lr = 1e-2, .patience = 3, .seed = 2}});
  CHECK(report.steps > 0);
  std::vector<const Ids*> chosen, rejected;
  for (const auto& p : test) chosen.push_back(&p.chosen), rejected.push_back(&p.rejected);
  const auto rc = reward::scalar_rewards(scorer, IdsSpan(chosen));
  const auto rr = reward::scalar_rewards(scorer, IdsSpan(rejected));
  std::size_t correct = 0;
  for (std::size_t k = 0; k < rc.size(); ++k) correct += rc[k] > rr[k];
  const double accuracy = static_cast<double>(correct) / static_cast<double>(rc.size());
  INFO("held-out pairwise accuracy ", accuracy, " after ", report.steps, " steps");
  CHECK(accuracy > 0.95);
  // scalar_rewards is the single output of each sequence run alone.
  for (std::size_t k = 0; k < 20; ++k)
    CHECK(rc[k] == doctest::Approx(direct_logits(scorer, test[k].chosen)[0]).epsilon(1e-5).scale(1));
  // The kept weights reproduce the best validation's accuracy and loss.
  std::vector<const Ids*> vc, vr;
  for (const auto& p : val) vc.push_back(&p.chosen), vr.push_back(&p.rejected);
  const auto bt = reward::bradley_terry_loss<double>(reward::scalar_rewards(scorer, IdsSpan(vc)),
                                                     reward::scalar_rewards(scorer, IdsSpan(vr)), {}, {}, {});
  CHECK(bt.loss == doctest::Approx(report.validations[report.best].val_loss).epsilon(1e-12));
  CHECK(bt.accuracy == report.validations[report.best].val_accuracy);

  Rng init2(6, 1);
  model::SequenceClassifier<float> two(kClfConfig, 2, init2);
  CHECK(contains(error_of([&] {
                   reward::train_pairwise(two, std::span<const PreferencePair>(train),
                                          std::span<const PreferencePair>(val));
                 }),
                 "the model has 2 outputs, expected 1 (a scalar reward head)"));
  CHECK(contains(error_of([&] { reward::scalar_rewards(two, IdsSpan(chosen)); }), "expected 1"));
}

TEST_CASE("train_pairwise: the first step's loss is the Bradley-Terry loss with margins and centering") {
  auto pairs = token7_pairs(24, 9);
  for (std::size_t k = 0; k < pairs.size(); ++k) pairs[k].margin = k % 3 == 0 ? 0.0 : 0.5 * static_cast<double>(k % 3);
  const auto cfg = tiny_config(kVocab, model::Pooling::mean, 0.5);
  Rng init(10, 3);
  model::SequenceClassifier<float> reference(cfg, 1, init);
  std::vector<const Ids*> chosen, rejected;
  std::vector<double> margins, zero(pairs.size(), 0.0);
  for (const auto& p : pairs) chosen.push_back(&p.chosen), rejected.push_back(&p.rejected), margins.push_back(p.margin);
  const auto rc = reward::scalar_rewards(reference, IdsSpan(chosen));
  const auto rr = reward::scalar_rewards(reference, IdsSpan(rejected));

  const auto first_loss = [&](const std::vector<PreferencePair>& ps, double center) {
    Rng again(10, 3);
    model::SequenceClassifier<float> scorer(cfg, 1, again);
    std::vector<TrainProgress> reports;
    reward::train_pairwise(scorer, std::span<const PreferencePair>(ps), std::span<const PreferencePair>(),
                           {.train = {.epochs = 1, .batch_size = ps.size(), .log_every = 1},
                            .center_rewards_coefficient = center},
                           [&](const TrainProgress& p) { reports.push_back(p); });
    REQUIRE(reports.size() == 1);
    return reports[0].train_loss;
  };
  auto no_margin = pairs;
  for (auto& p : no_margin) p.margin = 0;
  const double with_m = reward::bradley_terry_loss<double>(rc, rr, margins, {}, {}).loss;
  const double without_m = reward::bradley_terry_loss<double>(rc, rr, zero, {}, {}).loss;
  const double centered = reward::bradley_terry_loss<double>(rc, rr, margins, {}, {}, {.center_rewards_coefficient = 0.1}).loss;
  CHECK(with_m - without_m > 0.05);  // margins make the loss visibly larger
  CHECK(first_loss(pairs, 0) == doctest::Approx(with_m).epsilon(1e-5));
  CHECK(first_loss(no_margin, 0) == doctest::Approx(without_m).epsilon(1e-5));
  CHECK(centered - with_m > 1e-3);
  CHECK(first_loss(pairs, 0.1) == doctest::Approx(centered).epsilon(1e-5));
}

// =========================================================================================
// MonaRewardModel
// =========================================================================================

namespace {

std::vector<std::string> mona_corpus() {
  return {
      "ZAMBIA | ECF | Fiscal policy | Submit to parliament a 2024 budget consistent with program targets",
      "KENYA | SBA | Monetary policy | Adopt an inflation targeting framework by end-June",
      "GHANA | ECF | Revenue measures | Eliminate VAT exemptions on imported goods",
      "ZAMBIA | EFF | Debt management | Publish a medium-term debt management strategy",
      "KENYA | ECF | Fiscal policy | Clear domestic arrears of the central government",
      "GHANA | SBA | Financial sector | Complete the asset quality review of state-owned banks",
      "PAKISTAN | EFF | Energy sector | Adopt a circular debt management plan and tariff adjustments",
  };
}

model::EncoderConfig reward_config(std::size_t vocab) {
  return tiny_config(vocab, model::Pooling::mean, 0.3, 64);
}

reward::MonaRewardModel tiny_reward_model(reward::RewardSettings settings = {.max_tokens = 40, .temperature = 1.7}) {
  tokenize::Bpe bpe = tokenize::Bpe::train(mona_corpus(), {.vocab_size = 300});
  Rng init(12, 4);
  model::SequenceClassifier<float> clf(reward_config(bpe.vocab_size()), 2, init);
  return reward::MonaRewardModel(std::move(bpe), std::move(clf), settings);
}

struct Scored {
  std::vector<std::string> prompts, responses, texts;  // texts: the classifier texts, by hand
};

Scored scored_examples() {
  Scored s;
  const data::ConditionContext zambia{"ZAMBIA", "ECF", "Fiscal policy"};
  const data::ConditionContext kenya{"KENYA", "SBA", "Monetary policy"};
  s.prompts = {data::policy_prompt(zambia), data::policy_prompt(kenya), data::policy_prompt(zambia)};
  s.responses = {"Submit  a budget\nto parliament",
                 "Adopt an inflation targeting framework, publish quarterly monetary policy reports, "
                 "and phase out central bank financing of the budget by end-December",
                 "Clear arrears"};
  s.texts = {"ZAMBIA | ECF | Fiscal policy | Submit a budget to parliament",
             "KENYA | SBA | Monetary policy | " + s.responses[1],
             "ZAMBIA | ECF | Fiscal policy | Clear arrears"};
  return s;
}

}  // namespace

TEST_CASE("MonaRewardModel: encode is [CLS] tokens [SEP], truncated to max_tokens") {
  const auto rm = tiny_reward_model();
  const auto& tok = rm.tokenizer();
  REQUIRE(tok.cls());
  REQUIRE(tok.sep());
  CHECK(*tok.cls() != *tok.sep());
  const std::string short_text = "ZAMBIA | ECF | Fiscal policy | Clear arrears";
  const Ids body = tok.encode(short_text);
  REQUIRE(body.size() + 2 <= 40);
  Ids expected{*tok.cls()};
  expected.insert(expected.end(), body.begin(), body.end());
  expected.push_back(*tok.sep());
  CHECK(rm.encode(short_text) == expected);
  CHECK(rm.encode(data::ConditionContext{"ZAMBIA", "ECF", "Fiscal  policy"}, " Clear\tarrears ") == expected);

  const std::string long_text = mona_corpus()[6] + " " + mona_corpus()[5];
  const Ids long_body = tok.encode(long_text);
  REQUIRE(long_body.size() > 38);
  const Ids enc = rm.encode(long_text);
  REQUIRE(enc.size() == 40);
  CHECK(enc.front() == *tok.cls());
  CHECK(enc.back() == *tok.sep());
  CHECK(Ids(enc.begin() + 1, enc.end() - 1) == Ids(long_body.begin(), long_body.begin() + 38));
}

TEST_CASE("MonaRewardModel: score is sigmoid(z / T) of the classifier on the parsed prompt's text") {
  auto rm = tiny_reward_model();
  const auto ex = scored_examples();
  const auto& tok = rm.tokenizer();
  const double T = 1.7;
  const auto scores = rm.score(ex.prompts, ex.responses);
  REQUIRE(scores.size() == 3);
  std::vector<double> z(3);
  for (std::size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    Ids ids{*tok.cls()};
    const Ids body = tok.encode(ex.texts[i]);
    ids.insert(ids.end(), body.begin(), body.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(body.size(), 38)));
    ids.push_back(*tok.sep());
    const auto l = direct_logits(rm.classifier(), ids);
    z[i] = l[1] - l[0];
    CHECK(scores[i] == doctest::Approx(sigmoid(z[i] / T)).epsilon(1e-6).scale(1));
    CHECK(scores[i] > 0);
    CHECK(scores[i] < 1);
  }
  CHECK(std::abs(z[0] - z[1]) > 1e-3);  // the inputs are told apart (the comparison means something)
  // The same answer to a different prompt scores differently (the context is read).
  const std::vector<std::string> p2{ex.prompts[1]}, r2{ex.responses[0]};
  CHECK(rm.score(p2, r2)[0] != scores[0]);
  // Deterministic, and batching does not matter beyond rounding.
  CHECK(rm.score(ex.prompts, ex.responses) == scores);
  const std::vector<std::string> p1{ex.prompts[2]}, r1{ex.responses[2]};
  CHECK(rm.score(p1, r1)[0] == doctest::Approx(scores[2]).epsilon(1e-6).scale(1));

  reward::MonaRewardModel logit(rm.tokenizer(), rm.classifier(),
                                {.max_tokens = 40, .temperature = T, .output = reward::RewardOutput::logit});
  const auto raw = logit.score(ex.prompts, ex.responses);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(raw[i] == doctest::Approx(z[i] / T).epsilon(1e-5).scale(1));
    CHECK(sigmoid(raw[i]) == doctest::Approx(scores[i]).epsilon(1e-12));
  }
  rm.set_temperature(0.5);
  const auto sharper = rm.score(ex.prompts, ex.responses);
  for (std::size_t i = 0; i < 3; ++i) CHECK(sharper[i] == doctest::Approx(sigmoid(z[i] / 0.5)).epsilon(1e-6).scale(1));
}

TEST_CASE("MonaRewardModel: save and load give bit-identical scores") {
  auto rm = tiny_reward_model({.max_tokens = 24, .temperature = 1.2345678901234567,
                               .output = reward::RewardOutput::logit});
  const auto ex = scored_examples();
  TempDir dir("reward_model");
  rm.save(dir.path / "rm");
  CHECK(fs::exists(dir.path / "rm" / "reward.json"));
  CHECK(fs::exists(dir.path / "rm" / "tokenizer" / "vocab.json"));
  CHECK(fs::exists(dir.path / "rm" / "classifier" / "model.safetensors"));
  CHECK(fs::exists(dir.path / "rm" / "classifier" / "config.json"));
  const auto again = reward::MonaRewardModel::load(dir.path / "rm");
  CHECK(again.settings().max_tokens == 24);
  CHECK(again.settings().temperature == rm.settings().temperature);
  CHECK(again.settings().output == reward::RewardOutput::logit);
  CHECK(again.classifier().encoder.config().pooling == model::Pooling::mean);
  CHECK(again.tokenizer().vocab_size() == rm.tokenizer().vocab_size());
  CHECK(again.score(ex.prompts, ex.responses) == rm.score(ex.prompts, ex.responses));
  const std::string long_text = mona_corpus()[6] + " " + mona_corpus()[5];
  CHECK(again.encode(long_text) == rm.encode(long_text));
}

TEST_CASE("MonaRewardModel: errors") {
  auto rm = tiny_reward_model();
  const auto ex = scored_examples();
  const std::vector<std::string> one{ex.responses[0]};
  CHECK(contains(error_of([&] { rm.score(ex.prompts, one); }), "3 prompts but 1 responses"));
  auto bad = ex.prompts;
  bad[1] = "Describe a policy for KENYA.";
  const std::string msg = error_of([&] { rm.score(bad, ex.responses); });
  CHECK(contains(msg, "prompt 1 is not the MONA policy prompt"));
  CHECK(contains(msg, "Describe a policy for KENYA."));
  CHECK(rm.score(std::vector<std::string>{}, std::vector<std::string>{}).empty());

  // Settings.
  const auto build = [&](reward::RewardSettings s) {
    return error_of([&] { reward::MonaRewardModel(rm.tokenizer(), rm.classifier(), s); });
  };
  CHECK(contains(build({.max_tokens = 40, .temperature = 0}), "RewardSettings.temperature must be > 0, got 0"));
  CHECK(contains(build({.max_tokens = 40, .temperature = -1}), "RewardSettings.temperature must be > 0"));
  CHECK(contains(build({.max_tokens = 40, .temperature = std::numeric_limits<double>::quiet_NaN()}), "RewardSettings.temperature"));
  CHECK(contains(build({.max_tokens = 2}), "RewardSettings.max_tokens must be in [3, 64]"));
  CHECK(contains(build({.max_tokens = 65}), "RewardSettings.max_tokens must be in [3, 64]"));
  CHECK(contains(error_of([&] { rm.set_temperature(0); }), "temperature must be > 0"));
  CHECK(rm.settings().temperature == 1.7);
  {
    Rng init(1, 1);
    model::SequenceClassifier<float> three(reward_config(rm.tokenizer().vocab_size()), 3, init);
    CHECK(contains(error_of([&] { reward::MonaRewardModel(rm.tokenizer(), three); }), "3 classes, expected 2"));
    model::SequenceClassifier<float> small(reward_config(10), 2, init);
    CHECK(contains(error_of([&] { reward::MonaRewardModel(rm.tokenizer(), small); }), "vocabulary is 10"));
    tokenize::Bpe plain = tokenize::Bpe::train(mona_corpus(), {.vocab_size = 280, .special_tokens = {},
                                                               .roles = tokenize::SpecialRoles::unbound()});
    model::SequenceClassifier<float> fits(reward_config(300), 2, init);
    CHECK(contains(error_of([&] { reward::MonaRewardModel(plain, fits); }), "needs CLS and SEP"));
  }

  // Files.
  TempDir dir("reward_errors");
  const fs::path saved = dir.path / "rm";
  rm.save(saved);
  const auto rewrite_json = [&](const nlohmann::json& j) {
    std::ofstream(saved / "reward.json") << j.dump(2);
  };
  const nlohmann::json good = io::read_json(saved / "reward.json");
  CHECK(good.size() == 3);
  auto j = good;
  j["bogus_key"] = 1;
  rewrite_json(j);
  std::string err = error_of([&] { reward::MonaRewardModel::load(saved); });
  INFO(err);
  CHECK(contains(err, "reward.json"));
  CHECK(contains(err, "unknown key 'bogus_key'"));
  j = good;
  j["temperature"] = -2.0;
  rewrite_json(j);
  CHECK(contains(error_of([&] { reward::MonaRewardModel::load(saved); }), "temperature must be > 0, got -2"));
  j = good;
  j["output"] = "rank";
  rewrite_json(j);
  CHECK(contains(error_of([&] { reward::MonaRewardModel::load(saved); }), "output is 'rank'"));
  j = good;
  j["temperature"] = "warm";
  rewrite_json(j);
  err = error_of([&] { reward::MonaRewardModel::load(saved); });  // an rlxf::Error, not a json exception
  CHECK(contains(err, "reward.json: field 'temperature' = \"warm\": expected a finite number"));
  j = good;
  j["max_tokens"] = "many";
  rewrite_json(j);
  CHECK(contains(error_of([&] { reward::MonaRewardModel::load(saved); }), "field 'max_tokens' = \"many\": expected an integer"));
  rewrite_json(good);
  CHECK(reward::MonaRewardModel::load(saved).settings().temperature == 1.7);

  // A truncated classifier/model.safetensors.
  const fs::path weights = saved / "classifier" / "model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) / 2);
  err = error_of([&] { reward::MonaRewardModel::load(saved); });
  INFO(err);
  CHECK(contains(err, "model.safetensors"));
  CHECK(contains(err, "loading reward model"));
  fs::remove(saved / "reward.json");
  CHECK(contains(error_of([&] { reward::MonaRewardModel::load(saved); }), "reward.json"));
}

// =========================================================================================
// The RewardModel concept
// =========================================================================================

namespace {
struct UserReward {
  std::vector<double> score(std::span<const std::string> prompts, std::span<const std::string>) const {
    return std::vector<double>(prompts.size(), 1.0);
  }
};
struct NoScore {
  std::vector<double> reward(std::span<const std::string>, std::span<const std::string>) const { return {}; }
};
struct FloatScore {
  std::vector<float> score(std::span<const std::string>, std::span<const std::string>) const { return {}; }
};
struct MutableScore {
  std::vector<double> score(std::span<const std::string>, std::span<const std::string>) { return {}; }
};
struct OneArgScore {
  std::vector<double> score(std::span<const std::string>) const { return {}; }
};
}  // namespace

static_assert(RewardModel<reward::MonaRewardModel>);
static_assert(RewardModel<UserReward>);
static_assert(!RewardModel<NoScore>);
static_assert(!RewardModel<FloatScore>);    // must be exactly std::vector<double>
static_assert(!RewardModel<MutableScore>);  // score must be const
static_assert(!RewardModel<OneArgScore>);
static_assert(!RewardModel<int>);

TEST_CASE("RewardModel: a user type is usable where the concept is required") {
  const auto mean_reward = [](const RewardModel auto& rm, std::span<const std::string> p,
                              std::span<const std::string> r) {
    const auto v = rm.score(p, r);
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
  };
  const std::vector<std::string> p{"a", "b"}, r{"c", "d"};
  CHECK(mean_reward(UserReward{}, p, r) == 1.0);
}

// =========================================================================================
// hf_config: rlxf_pooling
// =========================================================================================

TEST_CASE("save_classifier / load_classifier keep mean pooling, an unknown rlxf_pooling is refused") {
  const auto cfg = tiny_config(kVocab, model::Pooling::mean, 0.4);
  Rng init(21, 1);
  model::SequenceClassifier<float> clf(cfg, 2, init);
  const auto examples = token7_examples(12, 22);
  const auto ptrs = pointers(examples);
  const auto z = reward::met_logits(clf, IdsSpan(ptrs));

  TempDir dir("hf_pooling");
  model::save_classifier(dir.path, clf);
  const nlohmann::json j = io::read_json(dir.path / "config.json");
  CHECK(j.at("rlxf_pooling") == "mean");
  const auto loaded = model::load_classifier<float>(dir.path);
  CHECK(loaded.encoder.config().pooling == model::Pooling::mean);
  CHECK(loaded.classes() == 2);
  CHECK(reward::met_logits(loaded, IdsSpan(ptrs)) == z);

  const auto write = [&](const nlohmann::json& config) { std::ofstream(dir.path / "config.json") << config.dump(2); };
  auto no_key = j;
  no_key.erase("rlxf_pooling");  // a Hugging Face BERT config: CLS pooling, which needs a pooler
  write(no_key);
  CHECK(model::encoder_config_from_hf(no_key).pooling == model::Pooling::cls);
  const std::string missing = error_of([&] { model::load_classifier<float>(dir.path); });
  INFO(missing);
  CHECK(contains(missing, "pooler"));
  CHECK(contains(missing, "missing"));

  auto max = j;
  max["rlxf_pooling"] = "max";
  write(max);
  const std::string err = error_of([&] { model::load_classifier<float>(dir.path); });
  INFO(err);
  CHECK(contains(err, "config.json"));
  CHECK(contains(err, "rlxf_pooling is 'max', expected 'cls' or 'mean'"));
  CHECK(model::encoder_config_from_hf(model::encoder_config_to_hf(cfg, 2)).pooling == model::Pooling::mean);
  auto cls_cfg = cfg;
  cls_cfg.pooling = model::Pooling::cls;
  CHECK(model::encoder_config_to_hf(cls_cfg, 2).at("rlxf_pooling") == "cls");
}
