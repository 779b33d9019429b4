#include <doctest/doctest.h>

#include "gradcheck.hpp"
#include "rlxf/model/encoder.hpp"
#include "rlxf/model/heads.hpp"

using namespace rlxf;
using model::Encoder;
using model::EncoderConfig;

TEST_CASE("Encoder + classifier head: finite-difference gradients, CLS and mean pooling, right padding") {
  for (auto pooling : {model::Pooling::cls, model::Pooling::mean}) {
    CAPTURE(static_cast<int>(pooling));
    const EncoderConfig cfg{.vocab_size = 13, .max_positions = 8, .type_vocab_size = 2, .d_model = 8,
                            .n_layers = 2, .n_heads = 2, .d_hidden = 16, .pooling = pooling, .init_std = 0.3};
    Rng rng(41);
    Encoder<double> enc(cfg, rng);
    auto head = model::classifier_head<double>(8, 3, rng, 0.3);
    auto ps = enc.parameters();
    head.collect(ps, "classifier.");
    for (auto& p : ps)
      if (p.name.find("norm") != std::string::npos || p.name.ends_with("bias"))
        rng.fill_normal(std::span<double>(p.param->value.data(), p.param->size()), 0.3, 0.5);
    nn::Tokens ids = zeros<std::int32_t, 2>({2, 6}), types = zeros<std::int32_t, 2>({2, 6});
    model::Mask mask = zeros<std::uint8_t, 2>({2, 6});
    for (std::size_t j = 0; j < 6; ++j) {
      ids(0, j) = static_cast<std::int32_t>((3 * j + 1) % 13);
      ids(1, j) = static_cast<std::int32_t>((5 * j + 2) % 13);
      types(0, j) = j >= 3;
      mask(0, j) = 1;
      mask(1, j) = j < 4;  // two pad positions on the right
    }
    const auto w = test::random_normal(6, 43);
    auto run = [&](typename Encoder<double>::Cache& cache, nn::Linear<double>::Cache& hc) {
      return head.forward(enc.forward(ids, &types, &mask, cache), hc);
    };
    auto loss = [&] {
      typename Encoder<double>::Cache cache;
      nn::Linear<double>::Cache hc;
      const auto logits = run(cache, hc);
      return test::weighted_sum({logits.data(), logits.size()}, w);
    };
    for (auto& p : ps) p.param->zero_grad();
    typename Encoder<double>::Cache cache;
    nn::Linear<double>::Cache hc;
    run(cache, hc);
    nn::Activation<double> dlogits = zeros<double, 3>({2, 1, 3});
    std::copy(w.begin(), w.end(), dlogits.begin());
    enc.backward(head.backward(dlogits, hc), cache);
    for (auto& p : ps) {
      const std::vector<double> g(p.param->grad.begin(), p.param->grad.end());
      const auto r = test::check_gradient({p.param->value.data(), p.param->size()}, g, loss);
      INFO(p.name, " error ", r.max_error, " analytic ", r.analytic, " numeric ", r.numeric);
      CHECK(r.max_error < 1e-6);
    }
    // Padding on the right does not change what the real tokens pool to.
    nn::Tokens short_ids = xt::view(ids, xt::range(1, 2), xt::range(0, 4));
    nn::Tokens short_types = xt::view(types, xt::range(1, 2), xt::range(0, 4));
    typename Encoder<double>::Cache c2;
    const auto pooled_short = enc.forward(short_ids, &short_types, nullptr, c2);
    for (std::size_t c = 0; c < 8; ++c)
      CHECK(pooled_short(0, 0, c) == doctest::Approx(cache.pooled(1, 0, c)).epsilon(1e-12));
  }
}

TEST_CASE("heads start as the recipe says") {
  Rng rng(1);
  const auto v = model::value_head<double>(64, rng);
  CHECK(xt::amax(xt::abs(v.weight.value))() == 0.0);
  CHECK(xt::amax(xt::abs(v.bias.value))() == 0.0);
  const auto r = model::scalar_reward_head<double>(4095, rng);
  double sq = 0;
  for (double x : r.weight.value) sq += x * x;
  CHECK(std::sqrt(sq / 4095) == doctest::Approx(1.0 / 64.0).epsilon(0.05));  // std 1/sqrt(4096)
  CHECK(xt::amax(xt::abs(r.bias.value))() == 0.0);
}

TEST_CASE("Encoder: activation checkpointing gives the same gradients, bit for bit, with right padding") {
  const EncoderConfig cfg{.vocab_size = 13, .max_positions = 8, .type_vocab_size = 2, .d_model = 8,
                          .n_layers = 3, .n_heads = 2, .d_hidden = 16, .init_std = 0.3};
  Rng r1(8), r2(8);
  Encoder<float> plain(cfg, r1), checkpointed(cfg, r2);
  checkpointed.set_checkpointing(true);
  nn::Tokens ids = zeros<std::int32_t, 2>({2, 6});
  model::Mask mask = zeros<std::uint8_t, 2>({2, 6});
  for (std::size_t j = 0; j < 6; ++j) {
    ids(0, j) = static_cast<std::int32_t>((3 * j + 1) % 13);
    ids(1, j) = static_cast<std::int32_t>((5 * j + 2) % 13);
    mask(0, j) = 1;
    mask(1, j) = j < 4;
  }
  typename Encoder<float>::Cache c1, c2;
  const auto p1 = plain.forward(ids, nullptr, &mask, c1);
  const auto p2 = checkpointed.forward(ids, nullptr, &mask, c2);
  REQUIRE(p1 == p2);
  CHECK(c2.blocks.blocks.empty());
  CHECK(c2.blocks.bytes() * 5 < c1.blocks.bytes());
  nn::Activation<float> dpooled = zeros<float, 3>({2, 1, 8});
  Rng draw(9);
  draw.fill_normal(std::span<float>(dpooled.data(), dpooled.size()), 0.0, 1.0);
  plain.backward(dpooled, c1);
  checkpointed.backward(dpooled, c2);
  auto g1 = plain.parameters(), g2 = checkpointed.parameters();
  REQUIRE(g1.size() == g2.size());
  for (std::size_t i = 0; i < g1.size(); ++i) {
    CAPTURE(g1[i].name);
    CHECK(g1[i].param->grad == g2[i].param->grad);
  }
}
