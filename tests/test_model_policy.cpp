#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "gradcheck.hpp"
#include "rlxf/model/generation.hpp"
#include "rlxf/model/policy.hpp"

using namespace rlxf;
using model::DecoderConfig;
using model::Policy;
using model::SequenceBatch;

namespace {

constexpr std::size_t vocab = 23;

DecoderConfig tiny(model::DecoderFamily family) {
  DecoderConfig c = family == model::DecoderFamily::gpt2
                        ? DecoderConfig{.vocab_size = vocab, .max_positions = 16, .d_model = 8, .n_layers = 2,
                                        .n_heads = 2, .d_hidden = 16}
                        : DecoderConfig::llama_like(vocab, 8, 1, 2, 1, 12);  // grouped-query: 1 kv head
  c.init_std = 0.3;
  return c;
}

constexpr model::DecoderFamily families[] = {model::DecoderFamily::gpt2, model::DecoderFamily::llama};

// Three rows, prompt width 4 with prompts of 4, 2 and 3 tokens (left-padded), response width 4
// with responses of 4, 2 and 3 tokens (ragged: the mask ends in zeros). Every column, padding
// included, holds a random token: masked positions must not matter.
SequenceBatch ragged_batch(std::uint64_t seed) {
  constexpr std::size_t b = 3, p = 4, n = 4;
  const std::size_t prompt_len[b] = {4, 2, 3}, response_len[b] = {4, 2, 3};
  SequenceBatch s{zeros<std::int32_t, 2>({b, p + n}), zeros<std::uint8_t, 2>({b, p + n}), p};
  Rng rng(seed);
  for (std::size_t r = 0; r < b; ++r)
    for (std::size_t j = 0; j < p + n; ++j) {
      s.tokens(r, j) = static_cast<std::int32_t>(rng.next_below(vocab));
      s.mask(r, j) = j < p ? (j >= p - prompt_len[r]) : (j - p < response_len[r]);
    }
  return s;
}

Tensor<double, 2> random_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  Tensor<double, 2> m = zeros<double, 2>({rows, cols});
  const auto v = test::random_normal(m.size(), seed);
  std::copy(v.begin(), v.end(), m.begin());
  return m;
}

// Norm weights and biases away from 1 and 0, and a non-zero value head (it starts at zero,
// which would hide its path back into the trunk).
void perturb(Policy<double>& policy, Rng& rng) {
  for (auto& p : policy.parameters(true))
    if (p.name.find("norm") != std::string::npos || p.name.ends_with("bias") || p.name.starts_with("v_head."))
      rng.fill_normal(std::span<double>(p.param->value.data(), p.param->size()), 0.3, 0.5);
}

double log_softmax_at(const double* z, std::size_t v, double temperature, std::size_t target) {
  double m = -INFINITY;
  for (std::size_t k = 0; k < v; ++k) m = std::max(m, z[k] / temperature);
  double s = 0;
  for (std::size_t k = 0; k < v; ++k) s += std::exp(z[k] / temperature - m);
  return z[target] / temperature - m - std::log(s);
}

}  // namespace

TEST_CASE("Policy: gradients of sum(a * logprobs) + sum(c * values) match finite differences") {
  for (auto family : families) {
    CAPTURE(static_cast<int>(family));
    Rng rng(3);
    Policy<double> policy(tiny(family), rng);
    perturb(policy, rng);
    auto ps = policy.parameters(true);
    const SequenceBatch batch = ragged_batch(4);
    const std::size_t b = batch.rows(), n = batch.response_width();
    // Coefficients everywhere, masked positions included: those must get no gradient.
    const Tensor<double, 2> a = random_matrix(b, n, 5), c = random_matrix(b, n, 6);
    for (double temperature : {1.0, 0.7}) {
      CAPTURE(temperature);
      auto loss = [&] {
        Policy<double>::Cache cache;
        const auto out = policy.forward(batch, temperature, true, cache);
        double s = 0;
        for (std::size_t i = 0; i < b * n; ++i)
          s += a.data()[i] * out.logprobs.data()[i] + c.data()[i] * out.values.data()[i];
        return s;
      };
      for (auto& p : ps) p.param->zero_grad();
      Policy<double>::Cache cache;
      policy.forward(batch, temperature, true, cache);
      policy.backward(a, &c, cache);
      std::size_t checked = 0;
      for (auto& p : ps) {
        const std::vector<double> g(p.param->grad.begin(), p.param->grad.end());
        const auto r = test::check_gradient({p.param->value.data(), p.param->size()}, g, loss);
        INFO(p.name, " error ", r.max_error, " at ", r.worst, " analytic ", r.analytic, " numeric ", r.numeric);
        CHECK(r.max_error < 1e-6);
        checked += r.checked;
      }
      std::size_t total = 0;
      for (auto& p : ps) total += p.param->size();
      CHECK(checked == total);
    }
  }
}

TEST_CASE("Policy: without values the value head gets no gradient and the trunk's is the log-probs' alone") {
  for (auto family : families) {
    CAPTURE(static_cast<int>(family));
    Rng rng(11);
    Policy<double> policy(tiny(family), rng);
    perturb(policy, rng);
    const SequenceBatch batch = ragged_batch(12);
    const Tensor<double, 2> a = random_matrix(batch.rows(), batch.response_width(), 13);
    const Tensor<double, 2> c0 = zeros<double, 2>({batch.rows(), batch.response_width()});
    auto ps = policy.parameters(true);
    // With values and zero coefficients: the reference gradients.
    for (auto& p : ps) p.param->zero_grad();
    Policy<double>::Cache with;
    const auto out_with = policy.forward(batch, 0.7, true, with);
    policy.backward(a, &c0, with);
    std::vector<std::vector<double>> want;
    for (auto& p : ps) want.emplace_back(p.param->grad.begin(), p.param->grad.end());
    // Without values.
    for (auto& p : ps) p.param->zero_grad();
    Policy<double>::Cache without;
    const auto out_without = policy.forward(batch, 0.7, false, without);
    CHECK(out_without.values.size() == 0);
    CHECK(out_without.logprobs == out_with.logprobs);
    policy.backward(a, nullptr, without);
    for (std::size_t k = 0; k < ps.size(); ++k) {
      CAPTURE(ps[k].name);
      const std::vector<double> got(ps[k].param->grad.begin(), ps[k].param->grad.end());
      if (ps[k].name.starts_with("v_head.")) {
        CHECK(std::all_of(got.begin(), got.end(), [](double x) { return x == 0.0; }));
      } else {
        CHECK(got == want[k]);
        CHECK(std::any_of(got.begin(), got.end(), [](double x) { return x != 0.0; }));
      }
    }
  }
}

TEST_CASE("Policy: log-probs equal log softmax(logits / T)[token] recomputed from the decoder") {
  for (auto family : families)
    for (double temperature : {1.0, 0.7, 1.3}) {
      CAPTURE(static_cast<int>(family));
      CAPTURE(temperature);
      Rng rng(7);
      Policy<double> policy(tiny(family), rng);
      const SequenceBatch batch = ragged_batch(8);
      const std::size_t p = batch.prompt_width;
      Policy<double>::Cache cache;
      const auto out = policy.forward(batch, temperature, false, cache);
      REQUIRE(out.logprobs.shape()[0] == batch.rows());
      REQUIRE(out.logprobs.shape()[1] == batch.response_width());
      model::Decoder<double>::Cache dcache;
      const auto logits = policy.decoder.forward(batch.tokens, &batch.mask, dcache);
      std::size_t real = 0;
      for (std::size_t r = 0; r < batch.rows(); ++r)
        for (std::size_t i = 0; i < batch.response_width(); ++i) {
          CAPTURE(r);
          CAPTURE(i);
          if (!batch.mask(r, p + i)) {
            CHECK(out.logprobs(r, i) == 0.0);
            continue;
          }
          ++real;
          const double want = log_softmax_at(&logits(r, p - 1 + i, 0), vocab, temperature,
                                             static_cast<std::size_t>(batch.tokens(r, p + i)));
          CHECK(want < 0);
          CHECK(std::abs(out.logprobs(r, i) - want) <= 1e-12 * std::max(1.0, std::abs(want)));
        }
      CHECK(real == 9);  // 4 + 2 + 3 response tokens
    }
}

TEST_CASE("Policy: log-probs of a sampled batch equal those generate() returned (PPO's old log-probs)") {
  for (auto family : families) {
    CAPTURE(static_cast<int>(family));
    Rng rng(23);
    Policy<double> policy(tiny(family), rng);
    // Three prompts of 5, 2 and 3 tokens, left-padded to 5.
    constexpr std::size_t b = 3, p = 5;
    nn::Tokens prompts = zeros<std::int32_t, 2>({b, p});
    model::Mask prompt_mask = zeros<std::uint8_t, 2>({b, p});
    const std::size_t len[b] = {5, 2, 3};
    Rng tok(31);
    for (std::size_t r = 0; r < b; ++r)
      for (std::size_t j = p - len[r]; j < p; ++j) {
        prompts(r, j) = static_cast<std::int32_t>(tok.next_below(vocab));
        prompt_mask(r, j) = 1;
      }
    model::GenerationConfig cfg{.max_new_tokens = 8, .temperature = 0.7, .top_k = 8};
    // EOS: the token row 0 sampled second without one. Rows draw in turn from one stream, so
    // row 0's first two draws are the same with it, and row 0 stops by its second token.
    Rng probe(5);
    const auto g0 = model::generate(policy.decoder, prompts, prompt_mask, cfg, probe);
    cfg.eos = g0.response(0, 1);
    Rng sample(5);
    const auto g = model::generate(policy.decoder, prompts, prompt_mask, cfg, sample);
    const std::size_t n = g.response.shape()[1];
    REQUIRE(g.tokens.shape()[1] == p + n);
    std::size_t row0 = 0;
    for (std::size_t i = 0; i < n; ++i) row0 += g.response_mask(0, i);
    CHECK(row0 <= 2);  // row 0 stopped at EOS
    const SequenceBatch batch{g.tokens, g.mask, p};
    CHECK(batch.response_mask() == g.response_mask);
    Policy<double>::Cache cache;
    const auto out = policy.forward(batch, cfg.temperature, true, cache);
    REQUIRE(out.logprobs.shape() == g.logprobs.shape());
    std::size_t real = 0;
    for (std::size_t r = 0; r < b; ++r)
      for (std::size_t i = 0; i < n; ++i) {
        CAPTURE(r);
        CAPTURE(i);
        if (!g.response_mask(r, i)) {
          CHECK(out.logprobs(r, i) == 0.0);
          CHECK(g.logprobs(r, i) == 0.0);
          CHECK(out.values(r, i) == 0.0);
          continue;
        }
        ++real;
        CHECK(std::abs(out.logprobs(r, i) - g.logprobs(r, i)) <= 1e-10 * std::max(1.0, std::abs(g.logprobs(r, i))));
      }
    CHECK(real >= n + 1);  // more than one row contributes
    CHECK(real < b * n);   // and some are masked
  }
}

TEST_CASE("Policy: values are the value head's dot product with the hidden state predicting each token") {
  for (auto family : families) {
    CAPTURE(static_cast<int>(family));
    Rng rng(41);
    Policy<double> policy(tiny(family), rng);
    const SequenceBatch batch = ragged_batch(42);
    const std::size_t p = batch.prompt_width, d = policy.config().d_model;
    {
      Policy<double>::Cache cache;
      const auto out = policy.forward(batch, 1.0, true, cache);
      REQUIRE(out.values.shape() == out.logprobs.shape());
      CHECK(std::all_of(out.values.begin(), out.values.end(), [](double x) { return x == 0.0; }));
    }
    std::vector<double> w(d);
    for (std::size_t k = 0; k < d; ++k) w[k] = 0.25 * static_cast<double>(k) - 0.8;
    const double bias = 0.375;
    REQUIRE(policy.value.weight.size() == d);
    REQUIRE(policy.value.bias.size() == 1);
    std::copy(w.begin(), w.end(), policy.value.weight.value.begin());
    policy.value.bias.value(0) = bias;
    Policy<double>::Cache cache;
    const auto out = policy.forward(batch, 0.7, true, cache);
    model::Decoder<double>::Cache dcache;
    const auto& hidden = policy.decoder.forward_hidden(batch.tokens, &batch.mask, dcache);
    for (std::size_t r = 0; r < batch.rows(); ++r)
      for (std::size_t i = 0; i < batch.response_width(); ++i) {
        CAPTURE(r);
        CAPTURE(i);
        if (!batch.mask(r, p + i)) {
          CHECK(out.values(r, i) == 0.0);
          continue;
        }
        double want = bias;
        for (std::size_t k = 0; k < d; ++k) want += hidden(r, p - 1 + i, k) * w[k];
        CHECK(out.values(r, i) != 0.0);
        CHECK(std::abs(out.values(r, i) - want) <= 1e-12 * std::max(1.0, std::abs(want)));
      }
  }
}

TEST_CASE("SequenceBatch::response_mask and Policy's errors on bad inputs") {
  const SequenceBatch batch = ragged_batch(2);
  CHECK(batch.rows() == 3);
  CHECK(batch.response_width() == 4);
  const model::Mask rm = batch.response_mask();
  REQUIRE(rm.shape()[0] == 3);
  REQUIRE(rm.shape()[1] == 4);
  const std::uint8_t want[3][4] = {{1, 1, 1, 1}, {1, 1, 0, 0}, {1, 1, 1, 0}};
  for (std::size_t r = 0; r < 3; ++r)
    for (std::size_t i = 0; i < 4; ++i) {
      CHECK(rm(r, i) == want[r][i]);
      CHECK(rm(r, i) == batch.mask(r, 4 + i));
    }

  Rng rng(1);
  Policy<double> policy(tiny(model::DecoderFamily::gpt2), rng);
  Policy<double>::Cache cache;
  SequenceBatch no_prompt = batch;
  no_prompt.prompt_width = 0;
  CHECK_THROWS_WITH_AS(policy.forward(no_prompt, 1.0, false, cache), doctest::Contains("prompt width 0"),
                       rlxf::Error);
  SequenceBatch no_response = batch;
  no_response.prompt_width = 8;
  CHECK_THROWS_WITH_AS(policy.forward(no_response, 1.0, false, cache), doctest::Contains("response width 0"),
                       rlxf::Error);
  SequenceBatch too_wide = batch;
  too_wide.prompt_width = 9;
  CHECK_THROWS_WITH_AS(policy.forward(too_wide, 1.0, false, cache), doctest::Contains("prompt width 9"),
                       rlxf::Error);
  SequenceBatch bad_mask = batch;
  bad_mask.mask = zeros<std::uint8_t, 2>({3, 7});
  CHECK_THROWS_WITH_AS(policy.forward(bad_mask, 1.0, false, cache), doctest::Contains("Policy::forward mask"),
                       rlxf::Error);
  CHECK_THROWS_WITH_AS(policy.forward(batch, 0.0, false, cache), doctest::Contains("temperature"), rlxf::Error);

  const Tensor<double, 2> d = zeros<double, 2>({3, 4});
  policy.forward(batch, 1.0, false, cache);
  CHECK_THROWS_WITH_AS(policy.backward(d, &d, cache), doctest::Contains("dvalues"), rlxf::Error);
  policy.forward(batch, 1.0, true, cache);
  CHECK_THROWS_WITH_AS(policy.backward(d, nullptr, cache), doctest::Contains("dvalues"), rlxf::Error);
  const Tensor<double, 2> d_wide = zeros<double, 2>({3, 5});
  CHECK_THROWS_WITH_AS(policy.backward(d_wide, &d, cache), doctest::Contains("dlogprobs"), rlxf::Error);
  CHECK_THROWS_WITH_AS(policy.backward(d, &d_wide, cache), doctest::Contains("dvalues"), rlxf::Error);
}

TEST_CASE("Policy::parameters: the value head only when asked, under v_head.") {
  for (auto family : families) {
    CAPTURE(static_cast<int>(family));
    Rng rng(1);
    Policy<double> policy(tiny(family), rng);
    const auto without = policy.parameters(false);
    const auto with = policy.parameters(true);
    const auto dec = policy.decoder.parameters();
    CHECK(std::none_of(without.begin(), without.end(), [](const auto& p) { return p.name.starts_with("v_head."); }));
    REQUIRE(without.size() == dec.size());
    for (std::size_t k = 0; k < dec.size(); ++k) {
      CHECK(without[k].name == dec[k].name);
      CHECK(without[k].param == dec[k].param);
    }
    REQUIRE(with.size() == dec.size() + 2);
    CHECK(with[dec.size()].name == "v_head.weight");
    CHECK(with[dec.size()].param == &policy.value.weight);
    CHECK(with[dec.size() + 1].name == "v_head.bias");
    CHECK(with[dec.size() + 1].param == &policy.value.bias);
    CHECK(with[dec.size()].param->size() == policy.config().d_model);
    CHECK(with[dec.size() + 1].param->size() == 1);
    CHECK(std::all_of(with.begin(), with.end() - 2, [](const auto& p) { return !p.name.starts_with("v_head."); }));
  }
}
