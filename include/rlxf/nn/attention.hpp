#pragma once
// Multi-head self-attention with grouped-query heads, optional RoPE, causal or bidirectional,
// with key padding masks. Projections q, k, v, o are separate Linear layers (LLaMA layout;
// GPT-2's fused c_attn is split when its weights are loaded).
#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "rlxf/core/rng.hpp"
#include "rlxf/nn/backend.hpp"
#include "rlxf/nn/linear.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/nn/storage.hpp"

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

template <class B>
class BasicMultiHeadAttention {
 public:
  using T = typename B::value_type;
  struct Cache {
    typename BasicLinear<B>::Cache in;   // x, shared by the q, k, v projections
    Array<B, T> q, k, v;                 // (B, H, T, D) after RoPE; k, v with kv heads
    Array<B, T> o;                       // (B, Hq, T, D)
    Array<B, typename B::accum_type> lse;  // (B, Hq, T)
    typename BasicLinear<B>::Cache out;  // attention output (B, T, Hq*D) fed to o_proj
    Array<B, std::int32_t> positions;    // (B*T), when RoPE is on
    std::size_t position_bound = 0;      // 1 + the largest of them: the rotation tables' extent
    Array<B, std::uint8_t> key_mask;     // (B*T), empty when no padding mask was given
    std::size_t bytes() const {
      return in.bytes() + held_bytes(q, k, v, o, lse, positions, key_mask) + out.bytes();
    }
  };

  BasicMultiHeadAttention(const AttentionConfig& cfg, Rng& rng, BackendRef<B> backend = {})
      : cfg_(validated(cfg)),
        q_proj(cfg.d_model, cfg.n_heads * cfg.head_dim(), cfg.bias, rng, cfg.init_std, backend),
        k_proj(cfg.d_model, cfg.kv_heads() * cfg.head_dim(), cfg.bias, rng, cfg.init_std, backend),
        v_proj(cfg.d_model, cfg.kv_heads() * cfg.head_dim(), cfg.bias, rng, cfg.init_std, backend),
        o_proj(cfg.n_heads * cfg.head_dim(), cfg.d_model, cfg.bias, rng, cfg.init_std, backend),
        backend_(backend) {}

  const AttentionConfig& config() const { return cfg_; }

  // x (B, T, C) -> (B, T, C)
  Activation<B> forward(const Activation<B>& x, const AttentionMask& mask, Cache& cache) const {
    B& be = backend_.get();
    const std::size_t b = x.shape()[0], t = x.shape()[1];
    const std::size_t hq = cfg_.n_heads, hkv = cfg_.kv_heads(), d = cfg_.head_dim();
    cache.in.x = x;
    cache.key_mask = {};
    if (mask.key_padding) {
      require_shape(*mask.key_padding, {b, t}, "attention key_padding mask");
      cache.key_mask = to_backend(be, flat(*mask.key_padding));
    }
    if (cfg_.rope) {
      const std::vector<std::int32_t> positions = positions_of(mask, b, t);
      cache.position_bound = position_bound(positions.data(), b * t);
      cache.positions = to_backend(be, std::span<const std::int32_t>(positions));
    }
    const auto [q, k, v] = project(x, cache.positions.data(), cache.position_bound);
    cache.q = to_heads(q.data(), b, t, hq, d);
    cache.k = to_heads(k.data(), b, t, hkv, d);
    cache.v = to_heads(v.data(), b, t, hkv, d);
    cache.o = zeros_array<T>(be, b * hq * t * d);
    cache.lse = zeros_array<typename B::accum_type>(be, b * hq * t);
    be.attention_forward(cache.q.data(), cache.k.data(), cache.v.data(), cache.o.data(), cache.lse.data(),
                         dims(b, t), settings(cache));
    return o_proj.forward(from_heads(cache.o.data(), b, t, hq, d), cache.out);
  }

  // Incremental decoding (inference only): x (B, Tn, C) are the new tokens at `positions`
  // (B*Tn, host memory); their keys and values are appended to the cache rows [length,
  // length + Tn), and they attend to every filled row (causally among themselves). Returns
  // (B, Tn, C).
  Activation<B> forward_cached(const Activation<B>& x, const std::int32_t* positions, KvView<T> kv) const {
    B& be = backend_.get();
    const std::size_t b = x.shape()[0], t = x.shape()[1];
    const std::size_t hq = cfg_.n_heads, hkv = cfg_.kv_heads(), d = cfg_.head_dim();
    RLXF_REQUIRE(kv.length + t <= kv.capacity, "KV cache full: ", kv.length, " + ", t,
                 " rows exceed its capacity of ", kv.capacity);
    const auto rows = on_backend(be, std::span<const std::int32_t>(positions, cfg_.rope ? b * t : 0));
    const auto [q, k, v] = project(x, rows.data(), cfg_.rope ? position_bound(positions, b * t) : 0);
    be.split_heads(k.data(), kv.k, b, t, hkv, d, kv.capacity, kv.length);
    be.split_heads(v.data(), kv.v, b, t, hkv, d, kv.capacity, kv.length);
    const Array<B, T> qh = to_heads(q.data(), b, t, hq, d);
    Array<B, T> o = zeros_array<T>(be, qh.size());
    Array<B, typename B::accum_type> lse = zeros_array<typename B::accum_type>(be, b * hq * t);
    AttentionSettings s;
    s.causal = cfg_.causal;
    s.key_mask = kv.key_mask;
    be.attention_forward(qh.data(), kv.k, kv.v, o.data(), lse.data(), {b, hq, hkv, t, kv.length + t, d, kv.capacity},
                         s);
    return o_proj.apply(from_heads(o.data(), b, t, hq, d));
  }

  Activation<B> backward(const Activation<B>& dy, const Cache& cache) {
    B& be = backend_.get();
    const std::size_t b = cache.in.x.shape()[0], t = cache.in.x.shape()[1];
    const std::size_t hq = cfg_.n_heads, hkv = cfg_.kv_heads(), d = cfg_.head_dim();
    const Activation<B> dattn = o_proj.backward(dy, cache.out);
    const Array<B, T> dout = to_heads(dattn.data(), b, t, hq, d);
    Array<B, T> dq = zeros_array<T>(be, cache.q.size()), dk = zeros_array<T>(be, cache.k.size()),
                dv = zeros_array<T>(be, cache.v.size());
    be.attention_backward(cache.q.data(), cache.k.data(), cache.v.data(), cache.o.data(), cache.lse.data(),
                          dout.data(), dq.data(), dk.data(), dv.data(), dims(b, t), settings(cache));
    Activation<B> dq_tok = from_heads(dq.data(), b, t, hq, d);
    Activation<B> dk_tok = from_heads(dk.data(), b, t, hkv, d);
    if (cfg_.rope) {
      be.rope(dq_tok.data(), cache.positions.data(), b * t, hq, d, cfg_.rope_theta, cache.position_bound, true);
      be.rope(dk_tok.data(), cache.positions.data(), b * t, hkv, d, cfg_.rope_theta, cache.position_bound, true);
    }
    Activation<B> dx = q_proj.backward(dq_tok, cache.in);
    be.add(k_proj.backward(dk_tok, cache.in).data(), dx.data(), dx.size());
    be.add(v_proj.backward(from_heads(dv.data(), b, t, hkv, d), cache.in).data(), dx.data(), dx.size());
    return dx;
  }

  void collect(Params<B>& out, const std::string& prefix) {
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
    Activation<B> q, k, v;  // (B, T, H*D) token-major; q and k rotated when RoPE is on
  };
  // The q, k, v projections of x (B, T, C), with RoPE at `positions` (B*T, each below `bound`;
  // unused without RoPE).
  Projected project(const Activation<B>& x, const std::int32_t* positions, std::size_t bound) const {
    const std::size_t n = x.shape()[0] * x.shape()[1], d = cfg_.head_dim();
    Projected p{q_proj.apply(x), k_proj.apply(x), v_proj.apply(x)};
    if (cfg_.rope) {
      B& be = backend_.get();
      be.rope(p.q.data(), positions, n, cfg_.n_heads, d, cfg_.rope_theta, bound, false);
      be.rope(p.k.data(), positions, n, cfg_.kv_heads(), d, cfg_.rope_theta, bound, false);
    }
    return p;
  }
  // One more than the largest of n positions (host memory): the rotation tables' extent.
  static std::size_t position_bound(const std::int32_t* positions, std::size_t n) {
    std::int32_t top = 0;
    for (std::size_t i = 0; i < n; ++i) top = std::max(top, positions[i]);
    return static_cast<std::size_t>(top) + 1;
  }
  AttentionDims dims(std::size_t b, std::size_t t) const {
    return {b, cfg_.n_heads, cfg_.kv_heads(), t, t, cfg_.head_dim(), 0};
  }
  AttentionSettings settings(const Cache& cache) const {
    AttentionSettings s;
    s.causal = cfg_.causal;
    s.key_mask = cache.key_mask.empty() ? nullptr : cache.key_mask.data();
    return s;
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
  Array<B, T> to_heads(const T* x, std::size_t b, std::size_t t, std::size_t h, std::size_t d) const {
    B& be = backend_.get();
    Array<B, T> y = zeros_array<T>(be, b * h * t * d);
    be.split_heads(x, y.data(), b, t, h, d, t, 0);
    return y;
  }
  Activation<B> from_heads(const T* x, std::size_t b, std::size_t t, std::size_t h, std::size_t d) const {
    B& be = backend_.get();
    Activation<B> y = empty_activation(be, {b, t, h * d});
    be.merge_heads(x, y.data(), b, t, h, d);
    return y;
  }

  AttentionConfig cfg_;

 public:
  BasicLinear<B> q_proj, k_proj, v_proj, o_proj;

 private:
  BackendRef<B> backend_;
};

template <class X>
using MultiHeadAttention = BasicMultiHeadAttention<backend_for_t<X>>;

}  // namespace rlxf::nn
