// rlxf::algo::sft and sft_loss: the loss against an independent log-softmax of the decoder's
// logits over the answer tokens, its gradient (a first-order check and one AdamW step that
// lowers it), training on a toy set ("say x" -> "x") until greedy decoding answers, and errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "error_of.hpp"
#include "rlxf/algo/sft.hpp"
#include "rlxf/model/text_policy.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/tokenize/bpe.hpp"

using namespace rlxf;
using rlxf::test::error_of;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

const std::vector<std::string> letters = {"a", "b", "c", "d", "e", "f"};

tokenize::Bpe tiny_bpe() {
  std::vector<std::string> corpus = {"the cat sat on the mat", "a dog ate the bone", "say it, say so"};
  for (const auto& l : letters) corpus.push_back("say " + l);
  return tokenize::Bpe::train(corpus, {.vocab_size = 280});
}

model::TextPolicy tiny_policy(std::uint64_t seed) {
  tokenize::Bpe bpe = tiny_bpe();
  Rng rng(seed);
  const model::DecoderConfig cfg{.vocab_size = bpe.vocab_size(), .max_positions = 32, .d_model = 16,
                                 .n_layers = 1, .n_heads = 2, .d_hidden = 32};
  return model::TextPolicy(std::move(bpe), model::Policy<float>(cfg, rng));
}

// Mean over answer tokens (mask at the response columns) of -log softmax(logits)[token], the
// logits read straight from the decoder at the position before each token, in double.
double independent_nll(const model::TextPolicy& policy, const model::SequenceBatch& batch, std::size_t* count_out) {
  typename model::Decoder<float>::Cache cache;
  const auto logits = policy.policy().decoder.forward(batch.tokens, &batch.mask, cache);  // (B, L, V)
  const std::size_t V = logits.shape()[2], p = batch.prompt_width;
  double sum = 0;
  std::size_t count = 0;
  for (std::size_t b = 0; b < batch.rows(); ++b)
    for (std::size_t i = 0; i < batch.response_width(); ++i) {
      if (!batch.mask(b, p + i)) continue;
      double m = -INFINITY;
      for (std::size_t v = 0; v < V; ++v) m = std::max(m, static_cast<double>(logits(b, p - 1 + i, v)));
      double s = 0;
      for (std::size_t v = 0; v < V; ++v) s += std::exp(static_cast<double>(logits(b, p - 1 + i, v)) - m);
      const auto target = static_cast<std::size_t>(batch.tokens(b, p + i));
      sum -= static_cast<double>(logits(b, p - 1 + i, target)) - m - std::log(s);
      ++count;
    }
  if (count_out) *count_out = count;
  return sum / static_cast<double>(count);
}

std::vector<float> flat_grads(ParameterList<float>& ps) {
  std::vector<float> g;
  for (auto& p : ps) g.insert(g.end(), p.param->grad.begin(), p.param->grad.end());
  return g;
}

}  // namespace

TEST_CASE("sft_loss: the mean answer-token NLL, checked against an independent log-softmax") {
  model::TextPolicy policy = tiny_policy(1);
  // Ragged prompts and answers: left-padded prompts, right-padded answers (each + EOS).
  const std::vector<std::string> prompts = {"say a", "the cat sat", "a"};
  const std::vector<std::string> answers = {"a", "on the mat", "dog ate"};
  const model::SequenceBatch batch = policy.encode(prompts, answers);
  std::size_t count = 0;
  const double want = independent_nll(policy, batch, &count);
  // Every answer contributes its tokens and its EOS.
  std::size_t expected = 0;
  for (const auto& a : answers) expected += policy.tokenizer().encode(a).size() + 1;
  CHECK(count == expected);
  auto ps = policy.policy().parameters(true);
  for (auto& p : ps) p.param->zero_grad();
  const double got = algo::sft_loss(policy.policy(), batch, false);
  CHECK(got == doctest::Approx(want).epsilon(1e-5));
  CHECK(got > 0);
  // Without grad nothing is accumulated.
  const std::vector<float> untouched = flat_grads(ps);
  CHECK(std::all_of(untouched.begin(), untouched.end(), [](float g) { return g == 0.0f; }));
  // With grad the same value, and a gradient on the decoder but none on the value head.
  CHECK(algo::sft_loss(policy.policy(), batch, true) == got);
  bool any = false;
  for (auto& p : ps) {
    const bool nonzero = std::any_of(p.param->grad.begin(), p.param->grad.end(), [](float x) { return x != 0.0f; });
    if (p.name.starts_with("v_head.")) CHECK_MESSAGE(!nonzero, p.name);
    any = any || nonzero;
  }
  CHECK(any);
}

TEST_CASE("sft_loss: the gradient points uphill (first order) and one AdamW step lowers the loss") {
  model::TextPolicy policy = tiny_policy(2);
  const std::vector<std::string> prompts = {"say a", "say b", "the cat"};
  const std::vector<std::string> answers = {"a", "b", "sat on the mat"};
  const model::SequenceBatch batch = policy.encode(prompts, answers);
  auto ps = policy.policy().parameters(false);
  for (auto& p : ps) p.param->zero_grad();
  const double before = algo::sft_loss(policy.policy(), batch, true);
  const std::vector<float> g = flat_grads(ps);
  double norm2 = 0;
  for (float x : g) norm2 += static_cast<double>(x) * static_cast<double>(x);
  REQUIRE(norm2 > 0);
  const double norm = std::sqrt(norm2);

  // A step of length eta against the gradient changes the loss by about -eta |g|.
  const double eta = 1e-2;
  std::vector<std::vector<float>> saved;
  for (auto& p : ps) saved.emplace_back(p.param->value.begin(), p.param->value.end());
  std::size_t k = 0;
  for (auto& p : ps)
    for (auto& w : p.param->value) w -= static_cast<float>(eta * static_cast<double>(g[k++]) / norm);
  const double moved = algo::sft_loss(policy.policy(), batch, false);
  INFO("before ", before, " after ", moved, " predicted change ", -eta * norm);
  CHECK(moved < before);
  CHECK((moved - before) == doctest::Approx(-eta * norm).epsilon(0.2));
  for (std::size_t i = 0; i < ps.size(); ++i) std::copy(saved[i].begin(), saved[i].end(), ps[i].param->value.begin());
  CHECK(algo::sft_loss(policy.policy(), batch, false) == before);

  // One AdamW step on the accumulated gradient lowers the loss.
  optim::AdamW<float> adamw(ps, {.lr = 1e-3, .weight_decay = 0.0});
  adamw.zero_grad();
  CHECK(algo::sft_loss(policy.policy(), batch, true) == before);
  adamw.step();
  const double after = algo::sft_loss(policy.policy(), batch, false);
  INFO("AdamW: before ", before, " after ", after);
  CHECK(after < before - 1e-4);
}

TEST_CASE("sft: a few epochs on 'say x' -> 'x' make greedy decoding answer x") {
  model::TextPolicy policy = tiny_policy(3);
  std::vector<std::string> prompts, answers;
  for (const auto& l : letters) {
    prompts.push_back("say " + l);
    answers.push_back(l);
  }
  const model::SequenceBatch batch = policy.encode(prompts, answers);
  const double before = algo::sft_loss(policy.policy(), batch, false);
  const auto report = algo::sft(policy, prompts, answers,
                                {.train = {.epochs = 60, .batch_size = 6, .lr = 1e-2, .weight_decay = 0.0,
                                           .warmup_fraction = 0.0, .log_every = 0},
                                 .max_answer_tokens = 8,
                                 .validation_fraction = 0.0});
  CHECK(report.steps == 60);
  CHECK(report.validations.empty());
  const double after = algo::sft_loss(policy.policy(), batch, false);
  INFO("answer NLL before ", before, " after ", after);
  CHECK(after < 0.1 * before);
  Rng rng(5);
  const model::Rollout r = policy.sample(prompts, {.max_new_tokens = 8, .greedy = true}, rng);
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    CAPTURE(prompts[i]);
    CHECK(r.texts[i] == answers[i]);
    CHECK(r.ended[i]);
  }
}

TEST_CASE("sft: validation reports NLL and exp(-NLL), mismatched and bad inputs give clear errors") {
  model::TextPolicy policy = tiny_policy(4);
  std::vector<std::string> prompts, answers;
  for (int rep = 0; rep < 2; ++rep)
    for (const auto& l : letters) {
      prompts.push_back("say " + l);
      answers.push_back(l);
    }
  const auto report = algo::sft(policy, prompts, answers,
                                {.train = {.epochs = 2, .batch_size = 4, .lr = 1e-3, .patience = 0, .log_every = 0},
                                 .validation_fraction = 0.25});
  REQUIRE(report.validations.size() == 2);
  for (const auto& v : report.validations) {
    CHECK(v.val_loss > 0);
    CHECK(v.val_accuracy == doctest::Approx(std::exp(-v.val_loss)));
  }
  // 12 pairs, 3 validate, 9 train in batches of 4: 3 steps per epoch.
  CHECK(report.steps == 6);

  const std::vector<std::string> two = {"say a", "say b"}, one = {"a"};
  const std::string mismatch = error_of([&] { algo::sft(policy, two, one); });
  CHECK(contains(mismatch, "2 prompts but 1 answers"));
  CHECK(contains(error_of([&] { algo::sft(policy, two, two, {.validation_fraction = 1.0}); }),
                 "validation_fraction must be in [0, 1)"));
  CHECK(contains(error_of([&] { algo::sft(policy, two, two, {.train = {.lr = 0.0}}); }), "lr must be > 0"));
  const std::vector<std::string> none;
  CHECK(!error_of([&] { algo::sft(policy, none, none); }).empty());
}
