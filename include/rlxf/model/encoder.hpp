#pragma once
// The reward model's trunk: a bidirectional BERT-family encoder. Token, position and segment
// embeddings summed and LayerNorm-ed; post-norm blocks with exact GELU; pooling of the
// [CLS] position through BERT's pooler (dense + tanh), or a masked mean of the tokens. Both
// poolings are one batched GEMM with weights over the positions (one-hot at [CLS], or 1/n
// on the n real tokens), so they run on the backend as the rest of the encoder does.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rlxf/core/checked.hpp"
#include "rlxf/core/range.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/model/decoder.hpp"
#include "rlxf/nn/block_stack.hpp"
#include "rlxf/nn/embedding.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/nn/storage.hpp"
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
    nn::Array<B, T> pool_weights;               // (B, T): pooled_b = sum_t w(b, t) hidden(b, t)
    typename nn::BasicLinear<B>::Cache pooler;  // cls: the [CLS] states (B, 1, C)
    Act pooled;                                 // (B, 1, C)
  };

  BasicEncoder(const EncoderConfig& cfg, Rng& rng, nn::BackendRef<B> backend = {})
      : cfg_(validated(cfg)),
        backend_(backend),
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
  nn::BackendRef<B> backend() const { return backend_; }

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
    B& be = backend_.get();
    cache.pool_weights = pool_weights(cache.mask);
    Act summed = nn::empty_activation(be, {b, 1, cfg_.d_model});
    be.gemm_batched(Transpose::no, Transpose::no, 1, cfg_.d_model, t, 1.0f, cache.pool_weights.data(), t, t,
                    cache.hidden.data(), cfg_.d_model, t * cfg_.d_model, 0.0f, summed.data(), cfg_.d_model,
                    cfg_.d_model, b);
    if (pooler) {
      const Act pre = pooler->forward(summed, cache.pooler);
      cache.pooled = nn::empty_activation(be, pre.shape());
      be.tanh_forward(pre.data(), cache.pooled.data(), pre.size());
    } else {
      cache.pooled = std::move(summed);
    }
    return cache.pooled;
  }

  // dpooled (B, 1, C) -> accumulates every parameter's gradient.
  void backward(const Act& dpooled, const Cache& cache) {
    const std::size_t b = cache.hidden.shape()[0], t = cache.hidden.shape()[1], c = cfg_.d_model;
    require_shape(dpooled, {b, 1, c}, "Encoder dpooled");
    B& be = backend_.get();
    Act dsummed = dpooled;
    if (pooler) {
      Act dpre = nn::zero_activation(be, dpooled.shape());
      be.tanh_backward(cache.pooled.data(), dpooled.data(), dpre.data(), dpre.size());
      dsummed = pooler->backward(dpre, cache.pooler);
    }
    // dhidden_b (T, C) = w_b^T (T, 1) dsummed_b (1, C)
    Act dx = nn::empty_activation(be, {b, t, c});
    be.gemm_batched(Transpose::yes, Transpose::no, t, c, 1, 1.0f, cache.pool_weights.data(), t, t, dsummed.data(), c,
                    c, 0.0f, dx.data(), c, t * c, b);
    dx = nn::backward_blocks(blocks, std::move(dx), nullptr, cache.blocks);
    dx = embed_norm.backward(dx, cache.embed_norm);
    word.backward(dx, cache.ids);
    position.backward(dx, cache.positions);
    token_type.backward(dx, cache.types);
  }

  // rlxf's names; model/checkpoint.hpp maps them to Hugging Face BERT names.
  void collect(nn::Params<B>& out, const std::string& prefix = "") {
    word.collect(out, prefix + "embeddings.word.");
    position.collect(out, prefix + "embeddings.position.");
    token_type.collect(out, prefix + "embeddings.token_type.");
    embed_norm.collect(out, prefix + "embeddings.norm.");
    for (std::size_t l = 0; l < blocks.size(); ++l)
      blocks[l].collect(out, prefix + "layers." + std::to_string(l) + ".");
    if (pooler) pooler->collect(out, prefix + "pooler.");
  }
  nn::Params<B> parameters() {
    nn::Params<B> ps;
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
    require_in("EncoderConfig.n_heads", c.n_heads, Range::closed(1, static_cast<double>(c.d_model)));
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
  // The pooling weights of each row over its positions: one-hot at [CLS] (position 0), or
  // 1/n on the row's n real tokens.
  nn::Array<B, T> pool_weights(const Mask& mask) const {
    const std::size_t b = mask.shape()[0], t = mask.shape()[1];
    std::vector<typename B::accum_type> w(b * t, 0);
    for (std::size_t i = 0; i < b; ++i) {
      if (pooler) {
        w[i * t] = 1;
        continue;
      }
      double n = 0;
      for (std::size_t j = 0; j < t; ++j) n += mask(i, j);
      if (n == 0) fail("Encoder: row ", i, " has no real token to pool");
      for (std::size_t j = 0; j < t; ++j)
        if (mask(i, j)) w[i * t + j] = static_cast<typename B::accum_type>(1.0 / n);
    }
    B& be = backend_.get();
    if constexpr (nn::host_memory<B>) {
      return w;
    } else {
      const auto staged = nn::to_backend(be, std::span<const typename B::accum_type>(w));
      nn::Array<B, T> out = nn::zeros_array<T>(be, w.size());
      be.template cast<typename B::accum_type, T>(staged.data(), out.data(), w.size());
      return out;
    }
  }

  EncoderConfig cfg_;
  bool checkpointing_ = false;
  nn::BackendRef<B> backend_;

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
