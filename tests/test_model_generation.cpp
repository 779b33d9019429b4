#include <doctest/doctest.h>

#include "rlxf/model/generation.hpp"
#include "rlxf/model/logprobs.hpp"

using namespace rlxf;
using model::Decoder;
using model::DecoderConfig;

namespace {
DecoderConfig tiny(model::DecoderFamily family) {
  DecoderConfig c = family == model::DecoderFamily::gpt2
                        ? DecoderConfig{.vocab_size = 13, .max_positions = 32, .d_model = 16, .n_layers = 2,
                                        .n_heads = 4, .d_hidden = 32}
                        : DecoderConfig::llama_like(13, 16, 2, 4, 2, 24);
  c.init_std = 0.5;  // peaked distributions, so greedy choices are not near-ties
  return c;
}

// Two prompts, of 3 and 5 tokens, left-padded to 5.
std::pair<nn::Tokens, model::Mask> prompts() {
  nn::Tokens ids = zeros<std::int32_t, 2>({2, 5});
  model::Mask mask = zeros<std::uint8_t, 2>({2, 5});
  const std::int32_t row0[] = {0, 0, 4, 7, 1}, row1[] = {9, 2, 2, 5, 11};
  for (std::size_t j = 0; j < 5; ++j) {
    ids(0, j) = row0[j];
    ids(1, j) = row1[j];
    mask(0, j) = j >= 2;
    mask(1, j) = 1;
  }
  return {ids, mask};
}

// Greedy decoding by full recomputation: run the whole sequence every step.
nn::Tokens greedy_by_recomputation(const Decoder<double>& dec, nn::Tokens ids, model::Mask mask, std::size_t n) {
  for (std::size_t step = 0; step < n; ++step) {
    typename Decoder<double>::Cache cache;
    const auto logits = dec.forward(ids, &mask, cache);
    const std::size_t b = ids.shape()[0], t = ids.shape()[1];
    nn::Tokens grown = zeros<std::int32_t, 2>({b, t + 1});
    model::Mask grown_mask = zeros<std::uint8_t, 2>({b, t + 1});
    for (std::size_t i = 0; i < b; ++i) {
      for (std::size_t j = 0; j < t; ++j) {
        grown(i, j) = ids(i, j);
        grown_mask(i, j) = mask(i, j);
      }
      std::size_t best = 0;
      for (std::size_t v = 1; v < 13; ++v)
        if (logits(i, t - 1, v) > logits(i, t - 1, best)) best = v;
      grown(i, t) = static_cast<std::int32_t>(best);
      grown_mask(i, t) = 1;
    }
    ids = grown;
    mask = grown_mask;
  }
  return ids;
}
}  // namespace

TEST_CASE("KV-cache greedy decoding gives exactly the tokens of full recomputation") {
  for (auto family : {model::DecoderFamily::gpt2, model::DecoderFamily::llama}) {
    CAPTURE(static_cast<int>(family));
    Rng rng(17);
    Decoder<double> dec(tiny(family), rng);
    const auto [ids, mask] = prompts();
    Rng sample_rng(1);
    const auto g = model::generate(dec, ids, mask, {.max_new_tokens = 8, .greedy = true}, sample_rng);
    const nn::Tokens want = greedy_by_recomputation(dec, ids, mask, 8);
    CHECK(g.tokens == want);
    CHECK(g.response.shape()[1] == 8);
  }
}

TEST_CASE("log-probs returned while sampling equal those recomputed by the forward pass") {
  for (auto family : {model::DecoderFamily::gpt2, model::DecoderFamily::llama})
    for (double temperature : {1.0, 0.7}) {
      Rng rng(23);
      Decoder<double> dec(tiny(family), rng);
      const auto [ids, mask] = prompts();
      Rng sample_rng(5);
      const auto g = model::generate(
          dec, ids, mask, {.max_new_tokens = 6, .temperature = temperature, .top_k = 5, .eos = 3}, sample_rng);
      typename Decoder<double>::Cache cache;
      model::LogprobCache<double> lc;
      const auto logits = dec.forward(g.tokens, &g.mask, cache);
      const auto logp = model::token_logprobs(logits, model::next_token_targets(g.tokens, &g.mask), lc, temperature);
      for (std::size_t i = 0; i < 2; ++i)
        for (std::size_t j = 0; j < g.response.shape()[1]; ++j) {
          if (!g.response_mask(i, j)) {
            CHECK(g.tokens(i, 5 + j) == 0);  // pad after EOS
            continue;
          }
          CHECK(g.logprobs(i, j) == doctest::Approx(logp(i, 5 + j - 1)).epsilon(1e-10));
        }
    }
}

TEST_CASE("sampling is reproducible from the seed and honours top-k and EOS") {
  Rng rng(29);
  Decoder<double> dec(tiny(model::DecoderFamily::llama), rng);
  const auto [ids, mask] = prompts();
  const model::GenerationConfig cfg{.max_new_tokens = 10, .top_k = 1, .eos = 3};
  Rng a(7), b(7);
  const auto g1 = model::generate(dec, ids, mask, cfg, a);
  const auto g2 = model::generate(dec, ids, mask, cfg, b);
  CHECK(g1.tokens == g2.tokens);
  // top_k = 1 is greedy.
  Rng c(99);
  const auto greedy = model::generate(dec, ids, mask, {.max_new_tokens = 10, .greedy = true, .eos = 3}, c);
  CHECK(g1.tokens == greedy.tokens);
  // After EOS a row is padding and masked out.
  for (std::size_t i = 0; i < 2; ++i) {
    bool ended = false;
    for (std::size_t j = 0; j < g1.response.shape()[1]; ++j) {
      if (ended) {
        CHECK(g1.response_mask(i, j) == 0);
        CHECK(g1.response(i, j) == 0);
      }
      if (g1.response(i, j) == 3 && g1.response_mask(i, j)) ended = true;
    }
  }
  // Bad settings are named.
  Rng d(1);
  CHECK_THROWS_WITH_AS(model::generate(dec, ids, mask, {.temperature = 0.0}, d), doctest::Contains("temperature"),
                       rlxf::Error);
}
