#pragma once
// The reward model's trunk: a bidirectional BERT-family encoder. Token, position and segment
// embeddings summed and LayerNorm-ed; post-norm blocks with exact GELU; pooling of the
// [CLS] position through BERT's pooler (dense + tanh), or a masked mean of the tokens.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rlxf/core/checked.hpp"
#include "rlxf/core/parameter.hpp"
#include "rlxf/core/range.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/model/decoder.hpp"
#include "rlxf/nn/block_stack.hpp"
#include "rlxf/nn/embedding.hpp"
#include "rlxf/nn/transformer_block.hpp"

namespace rlxf::model {

enum class Pooling {
  cls,   // BERT: tanh(dense(hidden[:, 0])), the pooler BertForSequenceClassification reads
  mean,  // mean of the real tokens' hidden states (no pooler)
};

struct EncoderConfig {
  std::size_t vocab_size = 30522;
  std::size_t max_positions = 512;
  std::size_t type_vocab_size = 2;
  std::size_t d_model = 768;
  std::size_t n_layers = 12;
  std::size_t n_heads = 12;
  std::size_t d_hidden = 3072;
  double norm_eps = 1e-12;
  Pooling pooling = Pooling::cls;
  double init_std = 0.02;

  nn::BlockConfig block() const {
    return {.attention = {.d_model = d_model, .n_heads = n_heads, .bias = true, .causal = false,
                          .init_std = init_std},
            .mlp = {.d_model = d_model, .d_hidden = d_hidden, .kind = nn::MlpKind::gelu_exact, .bias = true,
                    .init_std = init_std},
            .norm = nn::NormKind::layer_norm,
            .norm_eps = norm_eps,
            .norm_position = nn::NormPosition::post};
  }
};

template <class B>
class BasicEncoder {
 public:
  using Backend = B;
  using T = typename B::value_type;
  using Act = nn::Activation<B>;
  struct Cache {
    nn::Tokens ids, types, positions;
    Mask mask;  // (B, T); all ones when none was given
    typename nn::BasicLayerNorm<B>::Cache embed_norm;
    nn::BlockStackCache<B> blocks;
    Act hidden;                                 // (B, T, C) last layer
    typename nn::BasicLinear<B>::Cache pooler;  // cls: the [CLS] states (B, 1, C)
    Act pooled;                                 // (B, 1, C)
  };

  BasicEncoder(const EncoderConfig& cfg, Rng& rng, nn::BackendRef<B> backend = {})
      : cfg_(validated(cfg)),
        word(cfg.vocab_size, cfg.d_model, rng, cfg.init_std, backend),
        position(cfg.max_positions, cfg.d_model, rng, cfg.init_std, backend),
        token_type(cfg.type_vocab_size, cfg.d_model, rng, cfg.init_std, backend),
        embed_norm(cfg.d_model, cfg.norm_eps, true, backend),
        pooler(cfg.pooling == Pooling::cls ? std::optional<nn::BasicLinear<B>>(std::in_place, cfg.d_model, cfg.d_model,
                                                                              true, rng, cfg.init_std, backend)
                                           : std::nullopt) {
    for (std::size_t l = 0; l < cfg.n_layers; ++l) blocks.emplace_back(cfg.block(), rng, backend);
  }

  const EncoderConfig& config() const { return cfg_; }

  // Activation checkpointing (nn/block_stack.hpp), as the decoder's. Off by default.
  void set_checkpointing(bool on) { checkpointing_ = on; }
  bool checkpointing() const { return checkpointing_; }

  // ids (B, T); types (B, T) segment ids or null (all 0); mask (B, T) or null (all real)
  // -> pooled (B, C) as (B, 1, C). Positions are 0..T-1 (BERT pads on the right).
  const Act& forward(const nn::Tokens& ids, const nn::Tokens* types, const Mask* mask, Cache& cache) const {
    const std::size_t b = ids.shape()[0], t = ids.shape()[1];
    if (t > cfg_.max_positions)
      fail("Encoder: sequence of ", t, " tokens exceeds max_positions (", cfg_.max_positions, ")");
    cache.ids = ids;
    cache.types = types ? *types : zeros<std::int32_t, 2>({b, t});
    require_shape(cache.types, {b, t}, "Encoder token types");
    cache.positions = positions_from_mask(nullptr, b, t);
    if (mask) {
      require_shape(*mask, {b, t}, "Encoder mask");
      cache.mask = *mask;
    } else {
      cache.mask = zeros<std::uint8_t, 2>({b, t});
      cache.mask.fill(1);
    }
    Act x = word.forward(ids);
    position.forward_add(cache.positions, x);
    token_type.forward_add(cache.types, x);
    x = embed_norm.forward(x, cache.embed_norm);
    const nn::AttentionMask am{&cache.mask, nullptr};
    cache.hidden = nn::forward_blocks(blocks, std::move(x), am, checkpointing_, cache.blocks);
    cache.pooled = zeros<T, 3>({b, 1, cfg_.d_model});
    if (pooler) {
      Act cls = xt::view(cache.hidden, xt::all(), xt::range(0, 1), xt::all());
      cache.pooled = xt::tanh(pooler->forward(cls, cache.pooler));
    } else {
      for (std::size_t i = 0; i < b; ++i) {
        const double n = count(cache.mask, i);
        for (std::size_t j = 0; j < t; ++j)
          if (cache.mask(i, j))
            for (std::size_t c = 0; c < cfg_.d_model; ++c)
              cache.pooled(i, 0, c) += static_cast<T>(static_cast<double>(cache.hidden(i, j, c)) / n);
      }
    }
    return cache.pooled;
  }

  // dpooled (B, 1, C) -> accumulates every parameter's gradient.
  void backward(const Act& dpooled, const Cache& cache) {
    const std::size_t b = cache.hidden.shape()[0], t = cache.hidden.shape()[1], c = cfg_.d_model;
    require_shape(dpooled, {b, 1, c}, "Encoder dpooled");
    Act dx = zeros<T, 3>({b, t, c});
    if (pooler) {
      const Act dpre = dpooled * (T(1) - cache.pooled * cache.pooled);  // tanh' = 1 - tanh^2
      const Act dcls = pooler->backward(dpre, cache.pooler);
      xt::view(dx, xt::all(), xt::range(0, 1), xt::all()) = dcls;
    } else {
      for (std::size_t i = 0; i < b; ++i) {
        const double n = count(cache.mask, i);
        for (std::size_t j = 0; j < t; ++j)
          if (cache.mask(i, j))
            for (std::size_t k = 0; k < c; ++k) dx(i, j, k) = static_cast<T>(static_cast<double>(dpooled(i, 0, k)) / n);
      }
    }
    dx = nn::backward_blocks(blocks, std::move(dx), nullptr, cache.blocks);
    dx = embed_norm.backward(dx, cache.embed_norm);
    word.backward(dx, cache.ids);
    position.backward(dx, cache.positions);
    token_type.backward(dx, cache.types);
  }

  // rlxf's names; model/checkpoint.hpp maps them to Hugging Face BERT names.
  void collect(ParameterList<T>& out, const std::string& prefix = "") {
    word.collect(out, prefix + "embeddings.word.");
    position.collect(out, prefix + "embeddings.position.");
    token_type.collect(out, prefix + "embeddings.token_type.");
    embed_norm.collect(out, prefix + "embeddings.norm.");
    for (std::size_t l = 0; l < blocks.size(); ++l)
      blocks[l].collect(out, prefix + "layers." + std::to_string(l) + ".");
    if (pooler) pooler->collect(out, prefix + "pooler.");
  }
  ParameterList<T> parameters() {
    ParameterList<T> ps;
    collect(ps);
    return ps;
  }

 private:
  static const EncoderConfig& validated(const EncoderConfig& c) {
    constexpr double size_cap = 1 << 24;
    require_in("EncoderConfig.vocab_size", c.vocab_size, Range::closed(1, size_cap));
    require_in("EncoderConfig.max_positions", c.max_positions, Range::closed(1, size_cap));
    require_in("EncoderConfig.type_vocab_size", c.type_vocab_size, Range::closed(1, 1 << 16));
    require_in("EncoderConfig.d_model", c.d_model, Range::closed(1, size_cap));
    require_in("EncoderConfig.n_layers", c.n_layers, Range::closed(1, 4096));
    require_in("EncoderConfig.n_heads", c.n_heads, Range::closed(1, c.d_model));
    require_in("EncoderConfig.d_hidden", c.d_hidden, Range::closed(1, size_cap));
    require_in("EncoderConfig.norm_eps", c.norm_eps, Range::above(0, 1));
    require_in("EncoderConfig.init_std", c.init_std, Range::closed(0, 1e3));
    if (c.d_model % c.n_heads != 0)
      fail("EncoderConfig.n_heads = ", c.n_heads, " must divide d_model = ", c.d_model);
    const std::size_t per_layer = checked_add(checked_mul(4, checked_mul(c.d_model, c.d_model, "d_model^2"), "attention"),
                                              checked_mul(2, checked_mul(c.d_model, c.d_hidden, "mlp"), "mlp"),
                                              "parameters per layer");
    const std::size_t total =
        checked_add(checked_mul(c.n_layers, per_layer, "block parameters"),
                    checked_mul(c.vocab_size + c.max_positions + c.type_vocab_size, c.d_model, "embeddings"),
                    "EncoderConfig parameters");
    if (total > (std::size_t{1} << 40))
      fail("EncoderConfig: about ", total, " parameters, more than the 2^40 any machine could hold");
    return c;
  }
  static double count(const Mask& mask, std::size_t row) {
    double n = 0;
    for (std::size_t j = 0; j < mask.shape()[1]; ++j) n += mask(row, j);
    if (n == 0) fail("Encoder: row ", row, " has no real token to pool");
    return n;
  }

  EncoderConfig cfg_;
  bool checkpointing_ = false;

 public:
  nn::BasicEmbedding<B> word, position, token_type;
  nn::BasicLayerNorm<B> embed_norm;
  std::vector<nn::BasicTransformerBlock<B>> blocks;
  std::optional<nn::BasicLinear<B>> pooler;  // cls pooling only
};

// model::Encoder<float>, Encoder<double>, or Encoder<B> for a backend B (nn/backend.hpp).
template <class X>
using Encoder = BasicEncoder<nn::backend_for_t<X>>;

}  // namespace rlxf::model
