#include <doctest/doctest.h>

#include "nn_check.hpp"
#include "rlxf/nn/embedding.hpp"
#include "rlxf/nn/linear.hpp"
#include "rlxf/nn/mlp.hpp"
#include "rlxf/nn/norm.hpp"

using namespace rlxf;
using rlxf::test::Act;
using rlxf::test::check_layer_gradients;
using rlxf::test::random_activation;

// f32 layers run with the same seed get the same (rounded) parameters as f64 ones; their
// outputs agree within this relative tolerance (floor 1e-3), the precision of f32 sums of
// a few dozen terms.
constexpr double kF32Tolerance = 2e-5;

TEST_CASE("Linear: gradients, bias, f32 agreement") {
  for (bool bias : {true, false}) {
    Rng rng(1);
    nn::Linear<double> lin(6, 5, bias, rng, 0.5);
    if (bias) rng.fill_normal(std::span<double>(lin.bias.value.data(), 5));
    ParameterList<double> ps;
    lin.collect(ps, "");
    CHECK(ps.size() == (bias ? 2u : 1u));
    nn::Linear<double>::Cache cache;
    Act x = random_activation(2, 3, 6, 2);
    check_layer_gradients(ps, x, [&](const Act& in) { return lin.forward(in, cache); },
                          [&](const Act& dy) { return lin.backward(dy, cache); });
    // y[0,0,o] = sum_i W[o,i] x[i] + b[o], by hand
    const Act y = lin.apply(x);
    for (std::size_t o = 0; o < 5; ++o) {
      double s = bias ? lin.bias.value(o) : 0.0;
      for (std::size_t i = 0; i < 6; ++i) s += lin.weight.value(o, i) * x(0, 0, i);
      CHECK(y(0, 0, o) == doctest::Approx(s).epsilon(1e-14));
    }
  }
  Rng r64(3), r32(3);
  nn::Linear<double> l64(7, 4, true, r64);
  nn::Linear<float> l32(7, 4, true, r32);
  const auto y64 = l64.apply(random_activation<double>(2, 5, 7, 4));
  const auto y32 = l32.apply(random_activation<float>(2, 5, 7, 4));
  CHECK(test::max_relative_difference(y32, y64) < kF32Tolerance);
  CHECK_THROWS_AS(l64.apply(random_activation<double>(1, 1, 6, 0)), rlxf::Error);
}

TEST_CASE("Embedding: lookup, gradient scatter, bad ids") {
  Rng rng(5);
  nn::Embedding<double> emb(10, 4, rng);
  nn::Tokens ids({2, 3});
  ids(0, 0) = 1; ids(0, 1) = 9; ids(0, 2) = 1;
  ids(1, 0) = 0; ids(1, 1) = 3; ids(1, 2) = 9;
  const Act y = emb.forward(ids);
  for (std::size_t c = 0; c < 4; ++c) CHECK(y(0, 1, c) == emb.weight.value(9, c));
  Act dy = random_activation(2, 3, 4, 6);
  emb.weight.zero_grad();
  emb.backward(dy, ids);
  for (std::size_t c = 0; c < 4; ++c) {
    CHECK(emb.weight.grad(1, c) == doctest::Approx(dy(0, 0, c) + dy(0, 2, c)));
    CHECK(emb.weight.grad(9, c) == doctest::Approx(dy(0, 1, c) + dy(1, 2, c)));
    CHECK(emb.weight.grad(2, c) == 0.0);
  }
  ids(1, 1) = 10;
  CHECK_THROWS_WITH_AS(emb.forward(ids), doctest::Contains("token id 10 at (1, 1)"), rlxf::Error);
}

TEST_CASE("LayerNorm and RMSNorm: gradients and f32 agreement") {
  for (auto kind : {nn::NormKind::layer_norm, nn::NormKind::rms_norm}) {
    nn::Norm<double> norm(kind, 8, 1e-5);
    ParameterList<double> ps;
    norm.collect(ps, "");
    // Move gamma and beta away from 1 and 0 so their gradients matter.
    Rng rng(7);
    for (auto& p : ps) rng.fill_normal(std::span<double>(p.param->value.data(), p.param->size()), 0.5, 1.0);
    nn::Norm<double>::Cache cache;
    Act x = random_activation(3, 4, 8, 8);
    check_layer_gradients(ps, x, [&](const Act& in) { return norm.forward(in, cache); },
                          [&](const Act& dy) { return norm.backward(dy, cache); });
  }
  nn::LayerNorm<double> l64(16);
  nn::LayerNorm<float> l32(16);
  nn::LayerNorm<double>::Cache c64;
  nn::LayerNorm<float>::Cache c32;
  const auto y64 = l64.forward(random_activation<double>(2, 3, 16, 9), c64);
  const auto y32 = l32.forward(random_activation<float>(2, 3, 16, 9), c32);
  CHECK(test::max_relative_difference(y32, y64) < kF32Tolerance);
}

TEST_CASE("Mlp: GELU (both forms) and SwiGLU gradients") {
  for (auto kind : {nn::MlpKind::gelu_tanh, nn::MlpKind::gelu_exact, nn::MlpKind::swiglu}) {
    Rng rng(11);
    nn::Mlp<double> mlp({.d_model = 6, .d_hidden = 10, .kind = kind, .bias = true, .init_std = 0.5}, rng);
    ParameterList<double> ps;
    mlp.collect(ps, "mlp.");
    CHECK(ps.size() == (kind == nn::MlpKind::swiglu ? 6u : 4u));
    for (auto& p : ps)
      if (p.name.ends_with("bias")) rng.fill_normal(std::span<double>(p.param->value.data(), p.param->size()));
    nn::Mlp<double>::Cache cache;
    Act x = random_activation(2, 3, 6, 12);
    check_layer_gradients(ps, x, [&](const Act& in) { return mlp.forward(in, cache); },
                          [&](const Act& dy) { return mlp.backward(dy, cache); });
  }
}
