#pragma once
// A transformer block: attention and MLP sublayers with residual connections.
//   pre-norm  (GPT-2, LLaMA): h = x + attn(norm1(x));  y = h + mlp(norm2(h))
//   post-norm (BERT):         h = norm1(x + attn(x));  y = norm2(h + mlp(h))
#include <string>

#include "rlxf/nn/attention.hpp"
#include "rlxf/nn/mlp.hpp"
#include "rlxf/nn/norm.hpp"

namespace rlxf::nn {

enum class NormPosition { pre, post };

struct BlockConfig {
  AttentionConfig attention;
  MlpConfig mlp;
  NormKind norm = NormKind::layer_norm;
  double norm_eps = 1e-5;
  NormPosition norm_position = NormPosition::pre;
};

template <class B>
class BasicTransformerBlock {
 public:
  using T = typename B::value_type;
  struct Cache {
    typename BasicNorm<B>::Cache norm1, norm2;
    typename BasicMultiHeadAttention<B>::Cache attn;
    typename BasicMlp<B>::Cache mlp;
    std::size_t bytes() const {
      return BasicNorm<B>::bytes(norm1) + BasicNorm<B>::bytes(norm2) + attn.bytes() + mlp.bytes();
    }
  };

  BasicTransformerBlock(const BlockConfig& cfg, Rng& rng, BackendRef<B> backend = {})
      : cfg_(validated(cfg)),
        norm1(cfg.norm, cfg.attention.d_model, cfg.norm_eps, backend),
        attn(cfg.attention, rng, backend),
        norm2(cfg.norm, cfg.attention.d_model, cfg.norm_eps, backend),
        mlp(cfg.mlp, rng, backend),
        backend_(backend) {}

  const BlockConfig& config() const { return cfg_; }

  // x (B, T, C) -> (B, T, C)
  Activation<B> forward(const Activation<B>& x, const AttentionMask& mask, Cache& cache) const {
    if (cfg_.norm_position == NormPosition::pre) {
      Activation<B> h = residual(x, attn.forward(norm1.forward(x, cache.norm1), mask, cache.attn));
      return residual(h, mlp.forward(norm2.forward(h, cache.norm2), cache.mlp));
    }
    const Activation<B> h = norm1.forward(residual(x, attn.forward(x, mask, cache.attn)), cache.norm1);
    return norm2.forward(residual(h, mlp.forward(h, cache.mlp)), cache.norm2);
  }

  // Incremental decoding (inference only): see MultiHeadAttention::forward_cached.
  Activation<B> forward_cached(const Activation<B>& x, const std::int32_t* positions, KvView<T> kv) const {
    Cache scratch;
    if (cfg_.norm_position == NormPosition::pre) {
      Activation<B> h = residual(x, attn.forward_cached(norm1.forward(x, scratch.norm1), positions, kv));
      return residual(h, mlp.forward(norm2.forward(h, scratch.norm2), scratch.mlp));
    }
    const Activation<B> h = norm1.forward(residual(x, attn.forward_cached(x, positions, kv)), scratch.norm1);
    return norm2.forward(residual(h, mlp.forward(h, scratch.mlp)), scratch.norm2);
  }

  Activation<B> backward(const Activation<B>& dy, const Cache& cache) {
    if (cfg_.norm_position == NormPosition::pre) {
      Activation<B> dh = residual(dy, norm2.backward(mlp.backward(dy, cache.mlp), cache.norm2));
      return residual(dh, norm1.backward(attn.backward(dh, cache.attn), cache.norm1));
    }
    const Activation<B> dsum2 = norm2.backward(dy, cache.norm2);  // gradient at h + mlp(h)
    const Activation<B> dh = residual(dsum2, mlp.backward(dsum2, cache.mlp));
    const Activation<B> dsum1 = norm1.backward(dh, cache.norm1);  // gradient at x + attn(x)
    return residual(dsum1, attn.backward(dsum1, cache.attn));
  }

  // Names follow LLaMA: input_layernorm, self_attn, post_attention_layernorm, mlp.
  void collect(Params<B>& out, const std::string& prefix) {
    norm1.collect(out, prefix + "input_layernorm.");
    attn.collect(out, prefix + "self_attn.");
    norm2.collect(out, prefix + "post_attention_layernorm.");
    mlp.collect(out, prefix + "mlp.");
  }

 private:
  static const BlockConfig& validated(const BlockConfig& c) {
    RLXF_REQUIRE(c.attention.d_model == c.mlp.d_model, "attention.d_model (", c.attention.d_model,
                 ") and mlp.d_model (", c.mlp.d_model, ") differ");
    return c;
  }
  // a + b, in b's storage.
  Activation<B> residual(const Activation<B>& a, Activation<B> b) const {
    backend_.get().add(a.data(), b.data(), b.size());
    return b;
  }
  BlockConfig cfg_;

 public:
  BasicNorm<B> norm1;
  BasicMultiHeadAttention<B> attn;
  BasicNorm<B> norm2;
  BasicMlp<B> mlp;

 private:
  BackendRef<B> backend_;
};

template <class X>
using TransformerBlock = BasicTransformerBlock<backend_for_t<X>>;

}  // namespace rlxf::nn
