#pragma once
// The policy: a causal transformer language model, configurable as the GPT-2 family (learned
// positions, LayerNorm, GELU, biases, tied embeddings) or the LLaMA family (RoPE, RMSNorm,
// SwiGLU, grouped-query attention, no biases, untied head).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rlxf/core/checked.hpp"
#include "rlxf/core/range.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/nn/backend.hpp"
#include "rlxf/nn/block_stack.hpp"
#include "rlxf/nn/embedding.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/nn/storage.hpp"
#include "rlxf/nn/transformer_block.hpp"

namespace rlxf::model {

enum class DecoderFamily { gpt2, llama };

// Padding mask of a batch: (B, T), 1 = real token, 0 = padding.
using Mask = Tensor<std::uint8_t, 2>;

struct DecoderConfig {
  DecoderFamily family = DecoderFamily::gpt2;
  std::size_t vocab_size = 50257;
  std::size_t max_positions = 1024;  // GPT-2: rows of the position table; LLaMA: a limit only
  std::size_t d_model = 768;
  std::size_t n_layers = 12;
  std::size_t n_heads = 12;
  std::size_t n_kv_heads = 0;        // 0: n_heads (LLaMA-2 70B and later use fewer)
  std::size_t d_hidden = 3072;       // GPT-2: 4 d_model; LLaMA: intermediate_size
  double norm_eps = 1e-5;            // GPT-2 layer_norm_epsilon; LLaMA rms_norm_eps (1e-6 / 1e-5)
  double rope_theta = 10000.0;       // LLaMA only
  bool tie_embeddings = true;        // GPT-2: true; LLaMA: false
  double init_std = 0.02;

  // GPT-2 small (124M) and a LLaMA-style model of the same size class.
  static DecoderConfig gpt2_small() { return {}; }
  static DecoderConfig llama_like(std::size_t vocab, std::size_t d_model, std::size_t n_layers,
                                  std::size_t n_heads, std::size_t n_kv_heads, std::size_t d_hidden) {
    return {.family = DecoderFamily::llama, .vocab_size = vocab, .max_positions = 4096,
            .d_model = d_model, .n_layers = n_layers, .n_heads = n_heads, .n_kv_heads = n_kv_heads,
            .d_hidden = d_hidden, .norm_eps = 1e-6, .tie_embeddings = false};
  }

  bool is_gpt2() const { return family == DecoderFamily::gpt2; }

  nn::BlockConfig block() const {
    const bool gpt2 = is_gpt2();
    return {.attention = {.d_model = d_model, .n_heads = n_heads, .n_kv_heads = n_kv_heads,
                          .bias = gpt2, .causal = true, .rope = !gpt2, .rope_theta = rope_theta,
                          .init_std = init_std},
            .mlp = {.d_model = d_model, .d_hidden = d_hidden,
                    .kind = gpt2 ? nn::MlpKind::gelu_tanh : nn::MlpKind::swiglu, .bias = gpt2,
                    .init_std = init_std},
            .norm = gpt2 ? nn::NormKind::layer_norm : nn::NormKind::rms_norm,
            .norm_eps = norm_eps,
            .norm_position = nn::NormPosition::pre};
  }
};

// Positions of a batch: cumsum(mask) - 1, clamped at 0 (so left padding does not shift the
// real tokens), or 0..T-1 without a mask.
inline Tensor<std::int32_t, 2> positions_from_mask(const Mask* mask, std::size_t b, std::size_t t) {
  auto pos = zeros<std::int32_t, 2>({b, t});
  for (std::size_t i = 0; i < b; ++i) {
    std::int32_t c = -1;
    for (std::size_t j = 0; j < t; ++j) {
      c += mask ? (*mask)(i, j) : 1;
      pos(i, j) = c < 0 ? 0 : c;
    }
  }
  return pos;
}

// Keys and values of every layer for incremental decoding, in B's memory, with the batch's
// key mask (host memory: the caller marks the rows it adds).
template <class B>
struct KvCache {
  using T = typename B::value_type;
  struct Layer {
    nn::Array<B, T> k, v;  // (B, kv_heads, capacity, head_dim)
  };
  std::size_t batch = 0, capacity = 0, length = 0;  // rows filled: [0, length)
  std::vector<std::uint8_t> mask;                   // (B, capacity), 1 = real token
  std::vector<Layer> layers;

  KvCache(const DecoderConfig& cfg, std::size_t batch_size, std::size_t cap, B& backend)
      : batch(batch_size), capacity(cap), mask(checked_mul(batch_size, cap, "KvCache mask"), 0), layers(cfg.n_layers) {
    const std::size_t kv_heads = cfg.n_kv_heads ? cfg.n_kv_heads : cfg.n_heads;
    const std::size_t n = checked_product({batch_size, kv_heads, cap, cfg.d_model / cfg.n_heads}, "KvCache size");
    for (auto& l : layers) {
      l.k = nn::zeros_array<T>(backend, n);
      l.v = nn::zeros_array<T>(backend, n);
    }
  }
  // Layer `layer`'s view, reading the key mask at `key_mask` (the mask in B's memory).
  nn::KvView<T> view(std::size_t layer, const std::uint8_t* key_mask) {
    return {layers[layer].k.data(), layers[layer].v.data(), capacity, length, key_mask};
  }
};

template <class B>
class BasicDecoder {
 public:
  using Backend = B;
  using T = typename B::value_type;
  using Act = nn::Activation<B>;
  struct Cache {
    nn::Tokens ids;
    Tensor<std::int32_t, 2> positions;
    nn::BlockStackCache<B> blocks;
    typename nn::BasicNorm<B>::Cache final_norm;
    Act hidden;  // (B, T, C) after the final norm: what the LM and value heads read

    // Bytes kept for the backward (activations and their statistics, ids, positions).
    std::size_t bytes() const {
      return nn::held_bytes(ids, positions, hidden) + blocks.bytes() + nn::BasicNorm<B>::bytes(final_norm);
    }
  };

  BasicDecoder(const DecoderConfig& cfg, Rng& rng, nn::BackendRef<B> backend = {})
      : cfg_(validated(cfg)),
        wte(cfg.vocab_size, cfg.d_model, rng, cfg.init_std, backend),
        wpe(cfg.is_gpt2() ? std::optional<nn::BasicEmbedding<B>>(std::in_place, cfg.max_positions, cfg.d_model, rng,
                                                                  cfg.init_std, backend)
                          : std::nullopt),
        final_norm(cfg.is_gpt2() ? nn::NormKind::layer_norm : nn::NormKind::rms_norm, cfg.d_model, cfg.norm_eps,
                   backend),
        lm_head(cfg.tie_embeddings ? nn::Param<B>() : nn::new_param(backend.get(), {cfg.vocab_size, cfg.d_model})),
        backend_(backend) {
    for (std::size_t l = 0; l < cfg.n_layers; ++l) blocks.emplace_back(cfg.block(), rng, backend);
    if (!cfg.tie_embeddings) nn::fill_normal(lm_head, rng, cfg.init_std);
  }

  const DecoderConfig& config() const { return cfg_; }
  nn::BackendRef<B> backend() const { return backend_; }

  // Activation checkpointing (nn/block_stack.hpp): forward keeps only each block's input and
  // backward recomputes the block; the same gradients for one more forward. Off by default.
  void set_checkpointing(bool on) { checkpointing_ = on; }
  bool checkpointing() const { return checkpointing_; }

  // ids (B, T), mask (B, T) or null -> hidden (B, T, C) after the final norm (also kept in the cache).
  const Act& forward_hidden(const nn::Tokens& ids, const Mask* mask, Cache& cache) const {
    const std::size_t b = ids.shape()[0], t = ids.shape()[1];
    if (mask) require_shape(*mask, {b, t}, "Decoder mask");
    if (cfg_.is_gpt2() && t > cfg_.max_positions)
      fail("Decoder: sequence of ", t, " tokens exceeds max_positions (", cfg_.max_positions, ")");
    cache.ids = ids;
    cache.positions = positions_from_mask(mask, b, t);
    const nn::AttentionMask am{mask, &cache.positions};
    const Act x = nn::forward_blocks(blocks, embed(ids, cache.positions), am, checkpointing_, cache.blocks);
    cache.hidden = final_norm.forward(x, cache.final_norm);
    return cache.hidden;
  }

  // ids (B, T) -> logits (B, T, vocab).
  Act forward(const nn::Tokens& ids, const Mask* mask, Cache& cache) const {
    return logits(forward_hidden(ids, mask, cache));
  }

  // hidden (B, T, C) -> logits (B, T, vocab) through the LM head (the token embedding when tied).
  Act logits(const Act& hidden) const {
    const std::size_t n = hidden.shape()[0] * hidden.shape()[1], c = cfg_.d_model, v = cfg_.vocab_size;
    Act out = nn::empty_activation(backend_.get(), {hidden.shape()[0], hidden.shape()[1], v});
    backend_.get().gemm(Transpose::no, Transpose::yes, n, v, c, 1.0f, hidden.data(), c, head_weight().value.data(), c,
                        0.0f, out.data(), v);
    return out;
  }

  // dlogits (B, T, vocab) -> gradient w.r.t. the hidden state; accumulates the head's gradient.
  Act logits_backward(const Act& dlogits, const Cache& cache) {
    const std::size_t n = cache.hidden.shape()[0] * cache.hidden.shape()[1], c = cfg_.d_model, v = cfg_.vocab_size;
    require_shape(dlogits, {cache.hidden.shape()[0], cache.hidden.shape()[1], v}, "Decoder dlogits");
    B& be = backend_.get();
    nn::Param<B>& head = head_weight();
    Act dhidden = nn::empty_activation(be, cache.hidden.shape());
    be.gemm(Transpose::no, Transpose::no, n, c, v, 1.0f, dlogits.data(), v, head.value.data(), c, 0.0f,
            dhidden.data(), c);
    be.gemm_accumulate(Transpose::yes, Transpose::no, v, c, n, 1.0f, dlogits.data(), v, cache.hidden.data(), c,
                       head.grad.data(), c);
    return dhidden;
  }

  // Backward from the gradient w.r.t. the final hidden state (the sum of what every head
  // that read it sends back); accumulates every parameter's gradient.
  void backward_hidden(const Act& dhidden, const Cache& cache) {
    const Act dx =
        nn::backward_blocks(blocks, final_norm.backward(dhidden, cache.final_norm), &cache.positions, cache.blocks);
    wte.backward(dx, cache.ids);
    if (wpe) wpe->backward(dx, cache.positions);
  }

  void backward(const Act& dlogits, const Cache& cache) { backward_hidden(logits_backward(dlogits, cache), cache); }

  // Incremental decoding (inference only): ids (B, Tn) at positions (B, Tn) are appended to
  // the KV cache `kv`, whose mask must already cover them. Returns logits (B, Tn, vocab).
  Act forward_cached(const nn::Tokens& ids, const Tensor<std::int32_t, 2>& positions, KvCache<B>& kv) const {
    const std::size_t t = ids.shape()[1];
    RLXF_REQUIRE(kv.layers.size() == blocks.size(), "KV cache has ", kv.layers.size(), " layers, the model ",
                 blocks.size());
    if (cfg_.is_gpt2() && kv.length + t > cfg_.max_positions)
      fail("Decoder: ", kv.length + t, " tokens exceed max_positions (", cfg_.max_positions, ")");
    const auto key_mask = nn::on_backend(backend_.get(), std::span<const std::uint8_t>(kv.mask));
    Act x = embed(ids, positions);
    for (std::size_t l = 0; l < blocks.size(); ++l)
      x = blocks[l].forward_cached(x, positions.data(), kv.view(l, key_mask.data()));
    kv.length += t;
    typename nn::BasicNorm<B>::Cache scratch;
    return logits(final_norm.forward(x, scratch));
  }

  // Embeddings of ids at `positions` (B, T): token embedding, plus the learned position
  // embedding for GPT-2 (LLaMA's positions enter through RoPE in attention).
  Act embed(const nn::Tokens& ids, const Tensor<std::int32_t, 2>& positions) const {
    Act x = wte.forward(ids);
    if (wpe) wpe->forward_add(positions, x);
    return x;
  }

  // Parameters under rlxf's own names (LLaMA-style inside blocks): "embed_tokens.weight",
  // "embed_positions.weight" (GPT-2), "layers.<i>.<block names>", "norm.weight"/"norm.bias",
  // "lm_head.weight" (untied only). model/checkpoint.hpp maps them to each family's
  // Hugging Face names.
  void collect(nn::Params<B>& out, const std::string& prefix = "") {
    wte.collect(out, prefix + "embed_tokens.");
    if (wpe) wpe->collect(out, prefix + "embed_positions.");
    for (std::size_t l = 0; l < blocks.size(); ++l)
      blocks[l].collect(out, prefix + "layers." + std::to_string(l) + ".");
    final_norm.collect(out, prefix + "norm.");
    if (!cfg_.tie_embeddings) out.push_back({prefix + "lm_head.weight", &lm_head});
  }
  nn::Params<B> parameters() {
    nn::Params<B> ps;
    collect(ps);
    return ps;
  }

 private:
  static const DecoderConfig& validated(const DecoderConfig& c) {
    constexpr double size_cap = 1 << 24;  // any one dimension; the parameter count is checked below
    require_in("DecoderConfig.vocab_size", c.vocab_size, Range::closed(1, size_cap));
    require_in("DecoderConfig.max_positions", c.max_positions, Range::closed(1, size_cap));
    require_in("DecoderConfig.d_model", c.d_model, Range::closed(1, size_cap));
    require_in("DecoderConfig.n_layers", c.n_layers, Range::closed(1, 4096));
    require_in("DecoderConfig.n_heads", c.n_heads, Range::closed(1, static_cast<double>(c.d_model)));
    require_in("DecoderConfig.n_kv_heads", c.n_kv_heads, Range::closed(0, static_cast<double>(c.n_heads)));
    require_in("DecoderConfig.d_hidden", c.d_hidden, Range::closed(1, size_cap));
    require_in("DecoderConfig.norm_eps", c.norm_eps, Range::above(0, 1));
    require_in("DecoderConfig.rope_theta", c.rope_theta, Range::above(0, 1e12));
    require_in("DecoderConfig.init_std", c.init_std, Range::closed(0, 1e3));
    if (c.d_model % c.n_heads != 0)
      fail("DecoderConfig.n_heads = ", c.n_heads, " must divide d_model = ", c.d_model);
    const std::size_t kv = c.n_kv_heads ? c.n_kv_heads : c.n_heads;
    if (c.n_heads % kv != 0) fail("DecoderConfig.n_kv_heads = ", kv, " must divide n_heads = ", c.n_heads);
    if (!c.is_gpt2() && (c.d_model / c.n_heads) % 2 != 0)
      fail("DecoderConfig: the head size d_model / n_heads = ", c.d_model / c.n_heads, " must be even for RoPE");
    // Embeddings + blocks, overflow-checked: a config too large to hold is refused here, not by
    // an allocation that wraps around.
    const std::size_t per_layer = checked_add(checked_mul(4, checked_mul(c.d_model, c.d_model, "d_model^2"), "attention"),
                                              checked_mul(3, checked_mul(c.d_model, c.d_hidden, "mlp"), "mlp"),
                                              "parameters per layer");
    const std::size_t total = checked_add(checked_mul(c.n_layers, per_layer, "block parameters"),
                                          checked_mul(c.vocab_size + c.max_positions, c.d_model, "embeddings"),
                                          "DecoderConfig parameters");
    if (total > (std::size_t{1} << 40))
      fail("DecoderConfig: about ", total, " parameters, more than the 2^40 any machine could hold");
    return c;
  }
  nn::Param<B>& head_weight() { return cfg_.tie_embeddings ? wte.weight : lm_head; }
  const nn::Param<B>& head_weight() const { return cfg_.tie_embeddings ? wte.weight : lm_head; }

  DecoderConfig cfg_;
  bool checkpointing_ = false;

 public:
  nn::BasicEmbedding<B> wte;  // token embedding (vocab, C)
  std::optional<nn::BasicEmbedding<B>> wpe;  // GPT-2 only: position embedding (max_positions, C)
  std::vector<nn::BasicTransformerBlock<B>> blocks;
  nn::BasicNorm<B> final_norm;
  nn::Param<B> lm_head;  // (vocab, C) when untied; empty when tied to wte

 private:
  nn::BackendRef<B> backend_;
};

// model::Decoder<float>, Decoder<double>, or Decoder<B> for a backend B (nn/backend.hpp).
template <class X>
using Decoder = BasicDecoder<nn::backend_for_t<X>>;

}  // namespace rlxf::model
