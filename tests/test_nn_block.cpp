#include <doctest/doctest.h>

#include "nn_check.hpp"
#include "rlxf/nn/transformer_block.hpp"

using namespace rlxf;
using rlxf::test::Act;
using rlxf::test::check_layer_gradients;
using rlxf::test::random_activation;

namespace {

nn::AttentionConfig attention_config(bool causal, bool rope, std::size_t kv_heads) {
  return {.d_model = 8, .n_heads = 4, .n_kv_heads = kv_heads, .bias = true, .causal = causal,
          .rope = rope, .rope_theta = 100.0, .init_std = 0.4};
}

// Right padding in row 0 (last two tokens), left padding in row 1 (first token).
Tensor<std::uint8_t, 2> padding_mask() {
  Tensor<std::uint8_t, 2> m({2, 5});
  m.fill(1);
  m(0, 3) = m(0, 4) = 0;
  m(1, 0) = 0;
  return m;
}

// RoPE positions for the mask above: cumsum(mask) - 1, clamped at 0 for padding.
Tensor<std::int32_t, 2> positions_for(const Tensor<std::uint8_t, 2>& mask) {
  Tensor<std::int32_t, 2> p(mask.shape());
  for (std::size_t b = 0; b < mask.shape()[0]; ++b) {
    std::int32_t c = -1;
    for (std::size_t t = 0; t < mask.shape()[1]; ++t) {
      c += mask(b, t);
      p(b, t) = c < 0 ? 0 : c;
    }
  }
  return p;
}

}  // namespace

TEST_CASE("MultiHeadAttention: gradients with causal and padding masks, GQA and RoPE") {
  const auto mask = padding_mask();
  const auto pos = positions_for(mask);
  for (bool causal : {true, false})
    for (bool rope : {false, true})
      for (std::size_t kv : {4u, 2u, 1u}) {
        CAPTURE(causal);
        CAPTURE(rope);
        CAPTURE(kv);
        Rng rng(21);
        nn::MultiHeadAttention<double> attn(attention_config(causal, rope, kv), rng);
        ParameterList<double> ps;
        attn.collect(ps, "");
        for (auto& p : ps)
          if (p.name.ends_with("bias")) rng.fill_normal(std::span<double>(p.param->value.data(), p.param->size()), 0.0, 0.3);
        nn::MultiHeadAttention<double>::Cache cache;
        const nn::AttentionMask am{&mask, rope ? &pos : nullptr};
        Act x = random_activation(2, 5, 8, 22);
        check_layer_gradients(ps, x, [&](const Act& in) { return attn.forward(in, am, cache); },
                              [&](const Act& dy) { return attn.backward(dy, cache); });
      }
}

TEST_CASE("TransformerBlock: whole-block gradients, GPT-2, LLaMA and BERT layouts") {
  struct Case {
    std::string name;
    nn::BlockConfig cfg;
  };
  const Case cases[] = {
      {"gpt2 (pre-norm LayerNorm, GELU tanh, causal)",
       {attention_config(true, false, 0), {.d_model = 8, .d_hidden = 16, .kind = nn::MlpKind::gelu_tanh, .bias = true, .init_std = 0.4},
        nn::NormKind::layer_norm, 1e-5, nn::NormPosition::pre}},
      {"llama (pre-norm RMSNorm, SwiGLU, RoPE, GQA, causal)",
       {attention_config(true, true, 2), {.d_model = 8, .d_hidden = 12, .kind = nn::MlpKind::swiglu, .bias = false, .init_std = 0.4},
        nn::NormKind::rms_norm, 1e-6, nn::NormPosition::pre}},
      {"bert (post-norm LayerNorm, exact GELU, bidirectional)",
       {attention_config(false, false, 0), {.d_model = 8, .d_hidden = 16, .kind = nn::MlpKind::gelu_exact, .bias = true, .init_std = 0.4},
        nn::NormKind::layer_norm, 1e-12, nn::NormPosition::post}},
  };
  const auto mask = padding_mask();
  const auto pos = positions_for(mask);
  for (const auto& c : cases) {
    CAPTURE(c.name);
    Rng rng(31);
    nn::TransformerBlock<double> block(c.cfg, rng);
    ParameterList<double> ps;
    block.collect(ps, "layers.0.");
    nn::TransformerBlock<double>::Cache cache;
    const nn::AttentionMask am{&mask, &pos};
    Act x = random_activation(2, 5, 8, 32);
    check_layer_gradients(ps, x, [&](const Act& in) { return block.forward(in, am, cache); },
                          [&](const Act& dy) { return block.backward(dy, cache); });

    // The f32 block agrees with the f64 block (same seed, same parameters up to rounding).
    Rng r32(31);
    nn::TransformerBlock<float> b32(c.cfg, r32);
    Rng r64(31);
    nn::TransformerBlock<double> b64(c.cfg, r64);
    nn::TransformerBlock<float>::Cache c32;
    nn::TransformerBlock<double>::Cache c64;
    const auto y32 = b32.forward(random_activation<float>(2, 5, 8, 33), am, c32);
    const auto y64 = b64.forward(random_activation<double>(2, 5, 8, 33), am, c64);
    // f32 vs f64 through a whole block: 1e-5 relative to values of order one (floor 0.1).
    CHECK(test::max_relative_difference(y32, y64, 0.1) < 1e-5);
  }
}

TEST_CASE("TransformerBlock: bad configs are named") {
  Rng rng(1);
  nn::BlockConfig cfg{attention_config(true, false, 3), {.d_model = 8, .d_hidden = 16}};
  CHECK_THROWS_WITH_AS(nn::TransformerBlock<double>(cfg, rng), doctest::Contains("multiple of n_kv_heads"), rlxf::Error);
  cfg.attention.n_kv_heads = 0;
  cfg.mlp.d_model = 6;
  CHECK_THROWS_WITH_AS(nn::TransformerBlock<double>(cfg, rng), doctest::Contains("mlp.d_model"), rlxf::Error);
}
