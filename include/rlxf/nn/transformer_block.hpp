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

template <class T>
class TransformerBlock {
 public:
  struct Cache {
    typename Norm<T>::Cache norm1, norm2;
    typename MultiHeadAttention<T>::Cache attn;
    typename Mlp<T>::Cache mlp;
  };

  TransformerBlock(const BlockConfig& cfg, Rng& rng)
      : cfg_(validated(cfg)),
        norm1(cfg.norm, cfg.attention.d_model, cfg.norm_eps),
        attn(cfg.attention, rng),
        norm2(cfg.norm, cfg.attention.d_model, cfg.norm_eps),
        mlp(cfg.mlp, rng) {}

  const BlockConfig& config() const { return cfg_; }

  // x (B, T, C) -> (B, T, C)
  Activation<T> forward(const Activation<T>& x, const AttentionMask& mask, Cache& cache) const {
    if (cfg_.norm_position == NormPosition::pre) {
      Activation<T> h = x + attn.forward(norm1.forward(x, cache.norm1), mask, cache.attn);
      return h + mlp.forward(norm2.forward(h, cache.norm2), cache.mlp);
    }
    const Activation<T> h = norm1.forward(x + attn.forward(x, mask, cache.attn), cache.norm1);
    return norm2.forward(h + mlp.forward(h, cache.mlp), cache.norm2);
  }

  // Incremental decoding (inference only): see MultiHeadAttention::forward_cached.
  Activation<T> forward_cached(const Activation<T>& x, const std::int32_t* positions, KvView<T> kv) const {
    Cache scratch;
    if (cfg_.norm_position == NormPosition::pre) {
      Activation<T> h = x + attn.forward_cached(norm1.forward(x, scratch.norm1), positions, kv);
      return h + mlp.forward(norm2.forward(h, scratch.norm2), scratch.mlp);
    }
    const Activation<T> h = norm1.forward(x + attn.forward_cached(x, positions, kv), scratch.norm1);
    return norm2.forward(h + mlp.forward(h, scratch.mlp), scratch.norm2);
  }

  Activation<T> backward(const Activation<T>& dy, const Cache& cache) {
    if (cfg_.norm_position == NormPosition::pre) {
      Activation<T> dh = dy + norm2.backward(mlp.backward(dy, cache.mlp), cache.norm2);
      return dh + norm1.backward(attn.backward(dh, cache.attn), cache.norm1);
    }
    const Activation<T> dsum2 = norm2.backward(dy, cache.norm2);  // gradient at h + mlp(h)
    const Activation<T> dh = dsum2 + mlp.backward(dsum2, cache.mlp);
    const Activation<T> dsum1 = norm1.backward(dh, cache.norm1);  // gradient at x + attn(x)
    return dsum1 + attn.backward(dsum1, cache.attn);
  }

  // Names follow LLaMA: input_layernorm, self_attn, post_attention_layernorm, mlp.
  void collect(ParameterList<T>& out, const std::string& prefix) {
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
  BlockConfig cfg_;

 public:
  Norm<T> norm1;
  MultiHeadAttention<T> attn;
  Norm<T> norm2;
  Mlp<T> mlp;
};

}  // namespace rlxf::nn
