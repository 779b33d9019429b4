#pragma once
// Multi-head self-attention with grouped-query heads, optional RoPE, causal or bidirectional,
// with key padding masks. Projections q, k, v, o are separate Linear layers (LLaMA layout;
// GPT-2's fused c_attn is split when its weights are loaded).
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "rlxf/core/parameter.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/cpu/attention.hpp"
#include "rlxf/cpu/rope.hpp"
#include "rlxf/nn/linear.hpp"

namespace rlxf::nn {

struct AttentionConfig {
  std::size_t d_model = 0;
  std::size_t n_heads = 0;
  std::size_t n_kv_heads = 0;   // 0: same as n_heads (plain multi-head); fewer: grouped-query
  bool bias = true;             // q/k/v/o biases (GPT-2, BERT: true; LLaMA: false)
  bool causal = true;           // decoder: true; encoder: false
  bool rope = false;            // rotary positions on q and k (LLaMA)
  double rope_theta = 10000.0;
  double init_std = 0.02;

  std::size_t kv_heads() const { return n_kv_heads ? n_kv_heads : n_heads; }
  std::size_t head_dim() const { return d_model / n_heads; }
};

// Where a layer's keys and values live during incremental decoding: k, v are
// (B, kv_heads, capacity, head_dim), rows [0, length) already filled; key_mask is
// (B, capacity), 1 for real tokens, and must already cover the rows being added.
template <class T>
struct KvView {
  T* k;
  T* v;
  std::size_t capacity;
  std::size_t length;
  const std::uint8_t* key_mask;
};

// Per-batch inputs that shape attention. Both are optional and must outlive the forward call.
struct AttentionMask {
  const Tensor<std::uint8_t, 2>* key_padding = nullptr;  // (B, T): 1 = real token, 0 = padding
  const Tensor<std::int32_t, 2>* positions = nullptr;    // (B, T) RoPE positions; default 0..T-1
};

template <class T>
class MultiHeadAttention {
 public:
  struct Cache {
    typename Linear<T>::Cache in;   // x, shared by the q, k, v projections
    std::vector<T> q, k, v;         // (B, H, T, D) after RoPE; k, v with kv heads
    std::vector<T> o, lse;          // (B, Hq, T, D), (B, Hq, T)
    typename Linear<T>::Cache out;  // attention output (B, T, Hq*D) fed to o_proj
    std::vector<std::int32_t> positions;  // (B*T), when RoPE is on
    std::vector<std::uint8_t> key_mask;   // (B*T), empty when no padding mask was given
  };

  MultiHeadAttention(const AttentionConfig& cfg, Rng& rng)
      : cfg_(validated(cfg)),
        q_proj(cfg.d_model, cfg.n_heads * cfg.head_dim(), cfg.bias, rng, cfg.init_std),
        k_proj(cfg.d_model, cfg.kv_heads() * cfg.head_dim(), cfg.bias, rng, cfg.init_std),
        v_proj(cfg.d_model, cfg.kv_heads() * cfg.head_dim(), cfg.bias, rng, cfg.init_std),
        o_proj(cfg.n_heads * cfg.head_dim(), cfg.d_model, cfg.bias, rng, cfg.init_std) {}

  const AttentionConfig& config() const { return cfg_; }

  // x (B, T, C) -> (B, T, C)
  Activation<T> forward(const Activation<T>& x, const AttentionMask& mask, Cache& cache) const {
    const std::size_t b = x.shape()[0], t = x.shape()[1];
    const std::size_t hq = cfg_.n_heads, hkv = cfg_.kv_heads(), d = cfg_.head_dim();
    cache.in.x = x;
    cache.key_mask.clear();
    if (mask.key_padding) {
      require_shape(*mask.key_padding, {b, t}, "attention key_padding mask");
      cache.key_mask.assign(mask.key_padding->begin(), mask.key_padding->end());
    }
    if (cfg_.rope) cache.positions = positions_of(mask, b, t);
    const auto [q, k, v] = project(x, cache.positions.data());
    cache.q = to_heads(q.data(), b, t, hq, d);
    cache.k = to_heads(k.data(), b, t, hkv, d);
    cache.v = to_heads(v.data(), b, t, hkv, d);
    cache.o.assign(b * hq * t * d, T(0));
    cache.lse.assign(b * hq * t, T(0));
    cpu::attention_forward<T>(cache.q.data(), cache.k.data(), cache.v.data(), cache.o.data(),
                              cache.lse.data(), shape(b, t), options(cache));
    return o_proj.forward(from_heads(cache.o.data(), b, t, hq, d), cache.out);
  }

  // Incremental decoding (inference only): x (B, Tn, C) are the new tokens at `positions`
  // (B*Tn); their keys and values are appended to the cache rows [length, length + Tn),
  // and they attend to every filled row (causally among themselves). Returns (B, Tn, C).
  Activation<T> forward_cached(const Activation<T>& x, const std::int32_t* positions, KvView<T> kv) const {
    const std::size_t b = x.shape()[0], t = x.shape()[1];
    const std::size_t hq = cfg_.n_heads, hkv = cfg_.kv_heads(), d = cfg_.head_dim();
    RLXF_REQUIRE(kv.length + t <= kv.capacity, "KV cache full: ", kv.length, " + ", t,
                 " rows exceed its capacity of ", kv.capacity);
    const auto [q, k, v] = project(x, positions);
    for (std::size_t bi = 0; bi < b; ++bi)
      for (std::size_t ti = 0; ti < t; ++ti)
        for (std::size_t hi = 0; hi < hkv; ++hi) {
          const std::size_t src = ((bi * t + ti) * hkv + hi) * d;
          const std::size_t dst = ((bi * hkv + hi) * kv.capacity + kv.length + ti) * d;
          std::copy_n(k.data() + src, d, kv.k + dst);
          std::copy_n(v.data() + src, d, kv.v + dst);
        }
    const std::vector<T> qh = to_heads(q.data(), b, t, hq, d);
    std::vector<T> o(qh.size()), lse(b * hq * t);
    cpu::AttentionOptions opt;
    opt.causal = cfg_.causal;
    opt.key_mask = kv.key_mask;
    cpu::attention_forward<T>(qh.data(), kv.k, kv.v, o.data(), lse.data(),
                              {b, hq, hkv, t, kv.length + t, d, kv.capacity}, opt);
    return o_proj.apply(from_heads(o.data(), b, t, hq, d));
  }

  Activation<T> backward(const Activation<T>& dy, const Cache& cache) {
    const std::size_t b = cache.in.x.shape()[0], t = cache.in.x.shape()[1];
    const std::size_t hq = cfg_.n_heads, hkv = cfg_.kv_heads(), d = cfg_.head_dim();
    const Activation<T> dattn = o_proj.backward(dy, cache.out);
    const std::vector<T> dout = to_heads(dattn.data(), b, t, hq, d);
    std::vector<T> dq(cache.q.size(), T(0)), dk(cache.k.size(), T(0)), dv(cache.v.size(), T(0));
    cpu::attention_backward<T>(cache.q.data(), cache.k.data(), cache.v.data(), cache.o.data(),
                               cache.lse.data(), dout.data(), dq.data(), dk.data(), dv.data(),
                               shape(b, t), options(cache));
    Activation<T> dq_tok = from_heads(dq.data(), b, t, hq, d);
    Activation<T> dk_tok = from_heads(dk.data(), b, t, hkv, d);
    if (cfg_.rope) {
      cpu::rope_backward<T>(dq_tok.data(), cache.positions.data(), b * t, hq, d, cfg_.rope_theta);
      cpu::rope_backward<T>(dk_tok.data(), cache.positions.data(), b * t, hkv, d, cfg_.rope_theta);
    }
    Activation<T> dx = q_proj.backward(dq_tok, cache.in);
    dx += k_proj.backward(dk_tok, cache.in);
    dx += v_proj.backward(from_heads(dv.data(), b, t, hkv, d), cache.in);
    return dx;
  }

  void collect(ParameterList<T>& out, const std::string& prefix) {
    q_proj.collect(out, prefix + "q_proj.");
    k_proj.collect(out, prefix + "k_proj.");
    v_proj.collect(out, prefix + "v_proj.");
    o_proj.collect(out, prefix + "o_proj.");
  }

 private:
  static const AttentionConfig& validated(const AttentionConfig& c) {
    RLXF_REQUIRE(c.n_heads > 0 && c.d_model % c.n_heads == 0, "d_model (", c.d_model,
                 ") must be a positive multiple of n_heads (", c.n_heads, ")");
    RLXF_REQUIRE(c.n_heads % c.kv_heads() == 0, "n_heads (", c.n_heads,
                 ") must be a multiple of n_kv_heads (", c.kv_heads(), ")");
    RLXF_REQUIRE(!c.rope || c.head_dim() % 2 == 0, "RoPE needs an even head_dim, got ", c.head_dim());
    return c;
  }
  struct Projected {
    Activation<T> q, k, v;  // (B, T, H*D) token-major; q and k rotated when RoPE is on
  };
  // The q, k, v projections of x (B, T, C), with RoPE at `positions` (B*T; unused without RoPE).
  Projected project(const Activation<T>& x, const std::int32_t* positions) const {
    const std::size_t n = x.shape()[0] * x.shape()[1], d = cfg_.head_dim();
    Projected p{q_proj.apply(x), k_proj.apply(x), v_proj.apply(x)};
    if (cfg_.rope) {
      cpu::rope_forward<T>(p.q.data(), positions, n, cfg_.n_heads, d, cfg_.rope_theta);
      cpu::rope_forward<T>(p.k.data(), positions, n, cfg_.kv_heads(), d, cfg_.rope_theta);
    }
    return p;
  }
  cpu::AttentionShape shape(std::size_t b, std::size_t t) const {
    return {b, cfg_.n_heads, cfg_.kv_heads(), t, t, cfg_.head_dim()};
  }
  cpu::AttentionOptions options(const Cache& cache) const {
    cpu::AttentionOptions o;
    o.causal = cfg_.causal;
    o.key_mask = cache.key_mask.empty() ? nullptr : cache.key_mask.data();
    return o;
  }
  static std::vector<std::int32_t> positions_of(const AttentionMask& mask, std::size_t b, std::size_t t) {
    if (mask.positions) {
      require_shape(*mask.positions, {b, t}, "attention positions");
      return {mask.positions->begin(), mask.positions->end()};
    }
    std::vector<std::int32_t> pos(b * t);
    for (std::size_t i = 0; i < b * t; ++i) pos[i] = static_cast<std::int32_t>(i % t);
    return pos;
  }
  // (B, T, H*D) token-major -> (B, H, T, D) head-major, and back.
  static std::vector<T> to_heads(const T* x, std::size_t b, std::size_t t, std::size_t h, std::size_t d) {
    std::vector<T> y(b * h * t * d);
    for (std::size_t bi = 0; bi < b; ++bi)
      for (std::size_t ti = 0; ti < t; ++ti)
        for (std::size_t hi = 0; hi < h; ++hi)
          std::copy_n(x + ((bi * t + ti) * h + hi) * d, d, y.data() + ((bi * h + hi) * t + ti) * d);
    return y;
  }
  static Activation<T> from_heads(const T* x, std::size_t b, std::size_t t, std::size_t h, std::size_t d) {
    Activation<T> y({b, t, h * d});
    for (std::size_t bi = 0; bi < b; ++bi)
      for (std::size_t hi = 0; hi < h; ++hi)
        for (std::size_t ti = 0; ti < t; ++ti)
          std::copy_n(x + ((bi * h + hi) * t + ti) * d, d, y.data() + ((bi * t + ti) * h + hi) * d);
    return y;
  }

  AttentionConfig cfg_;

 public:
  Linear<T> q_proj, k_proj, v_proj, o_proj;
};

}  // namespace rlxf::nn
