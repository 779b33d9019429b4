#include <doctest/doctest.h>

#include "gradcheck.hpp"
#include "rlxf/model/decoder.hpp"
#include "rlxf/model/logprobs.hpp"

using namespace rlxf;
using model::Decoder;
using model::DecoderConfig;

namespace {

DecoderConfig tiny(model::DecoderFamily family) {
  DecoderConfig c = family == model::DecoderFamily::gpt2
                        ? DecoderConfig{.vocab_size = 11, .max_positions = 8, .d_model = 8, .n_layers = 2,
                                        .n_heads = 2, .d_hidden = 16}
                        : DecoderConfig::llama_like(11, 8, 2, 4, 2, 12);
  c.init_std = 0.3;
  return c;
}

nn::Tokens tokens(std::size_t b, std::size_t t, std::uint64_t seed) {
  nn::Tokens ids = zeros<std::int32_t, 2>({b, t});
  Rng rng(seed);
  for (auto& x : ids) x = static_cast<std::int32_t>(rng.next_below(11));
  return ids;
}

model::Mask left_padded() {  // row 1 has two pad positions on the left
  model::Mask m = zeros<std::uint8_t, 2>({2, 6});
  m.fill(1);
  m(1, 0) = m(1, 1) = 0;
  return m;
}

}  // namespace

TEST_CASE("Decoder: gradient of a weighted sum of token log-probs, both families, left padding") {
  for (auto family : {model::DecoderFamily::gpt2, model::DecoderFamily::llama}) {
    CAPTURE(static_cast<int>(family));
    Rng rng(3);
    Decoder<double> dec(tiny(family), rng);
    auto ps = dec.parameters();
    // Norm weights and biases away from 1 and 0.
    for (auto& p : ps)
      if (p.name.find("norm") != std::string::npos || p.name.ends_with("bias"))
        rng.fill_normal(std::span<double>(p.param->value.data(), p.param->size()), 0.3, 0.5);
    const nn::Tokens ids = tokens(2, 6, 4);
    const model::Mask mask = left_padded();
    const nn::Tokens targets = model::next_token_targets(ids, &mask);
    CHECK(targets(1, 0) == model::ignore_target);
    CHECK(targets(1, 2) == ids(1, 3));
    CHECK(targets(0, 5) == model::ignore_target);
    const auto w = test::random_normal(12, 5);
    Tensor<double, 2> dlogp = zeros<double, 2>({2, 6});
    std::copy(w.begin(), w.end(), dlogp.begin());
    for (double temperature : {1.0, 0.7}) {
      auto loss = [&] {
        Decoder<double>::Cache cache;
        model::LogprobCache<double> lc;
        const auto logp = model::token_logprobs(dec.forward(ids, &mask, cache), targets, lc, temperature);
        double s = 0;
        for (std::size_t i = 0; i < 12; ++i) s += logp.data()[i] * w[i];
        return s;
      };
      for (auto& p : ps) p.param->zero_grad();
      Decoder<double>::Cache cache;
      model::LogprobCache<double> lc;
      const auto logits = dec.forward(ids, &mask, cache);
      model::token_logprobs(logits, targets, lc, temperature);
      auto dlogits = zeros<double, 3>({2, 6, 11});
      model::token_logprobs_backward(logits, targets, lc, dlogp, dlogits);
      dec.backward(dlogits, cache);
      for (auto& p : ps) {
        const std::vector<double> g(p.param->grad.begin(), p.param->grad.end());
        const auto r = test::check_gradient({p.param->value.data(), p.param->size()}, g, loss);
        INFO(p.name, " error ", r.max_error, " analytic ", r.analytic, " numeric ", r.numeric);
        CHECK(r.max_error < 1e-6);
      }
    }
  }
}

TEST_CASE("Decoder: padding on the left does not change the real tokens' logits") {
  for (auto family : {model::DecoderFamily::gpt2, model::DecoderFamily::llama}) {
    Rng rng(8);
    Decoder<double> dec(tiny(family), rng);
    const nn::Tokens ids = tokens(1, 4, 9);
    nn::Tokens padded = zeros<std::int32_t, 2>({1, 6});
    for (std::size_t j = 0; j < 4; ++j) padded(0, j + 2) = ids(0, j);
    model::Mask mask = zeros<std::uint8_t, 2>({1, 6});
    for (std::size_t j = 2; j < 6; ++j) mask(0, j) = 1;
    Decoder<double>::Cache c1, c2;
    const auto a = dec.forward(ids, nullptr, c1);
    const auto b = dec.forward(padded, &mask, c2);
    for (std::size_t j = 0; j < 4; ++j)
      for (std::size_t v = 0; v < 11; ++v) CHECK(b(0, j + 2, v) == doctest::Approx(a(0, j, v)).epsilon(1e-12));
  }
}

TEST_CASE("Decoder: activation checkpointing gives the same gradients, bit for bit, and keeps fewer bytes") {
  for (auto family : {model::DecoderFamily::gpt2, model::DecoderFamily::llama}) {
    CAPTURE(static_cast<int>(family));
    DecoderConfig cfg = tiny(family);
    cfg.n_layers = 3;
    Rng r1(5), r2(5);
    Decoder<float> plain(cfg, r1), checkpointed(cfg, r2);
    checkpointed.set_checkpointing(true);
    CHECK(checkpointed.checkpointing());
    const nn::Tokens ids = tokens(2, 6, 6);
    const model::Mask mask = left_padded();
    Rng draw(7);
    nn::Activation<float> dlogits = zeros<float, 3>({2, 6, cfg.vocab_size});
    draw.fill_normal(std::span<float>(dlogits.data(), dlogits.size()), 0.0, 1.0);
    typename Decoder<float>::Cache c1, c2;
    const auto l1 = plain.forward(ids, &mask, c1);
    const auto l2 = checkpointed.forward(ids, &mask, c2);
    REQUIRE(l1 == l2);
    // The forward kept one (B, T, C) input a block (and the mask, for the recomputation) in
    // place of each block's caches.
    std::size_t block_bytes = 0;
    for (const auto& b : c1.blocks.blocks) block_bytes += b.bytes();
    const std::size_t inputs = cfg.n_layers * 2 * 6 * cfg.d_model * sizeof(float);
    CHECK(c2.blocks.blocks.empty());
    CHECK(c1.bytes() - c2.bytes() == block_bytes - inputs - mask.size());
    CHECK(block_bytes > 8 * inputs);
    plain.backward(dlogits, c1);
    checkpointed.backward(dlogits, c2);
    auto p1 = plain.parameters(), p2 = checkpointed.parameters();
    REQUIRE(p1.size() == p2.size());
    for (std::size_t i = 0; i < p1.size(); ++i) {
      CAPTURE(p1[i].name);
      CHECK(p1[i].param->grad == p2[i].param->grad);
    }
  }
}
