#pragma once
// What the fused attention kernels compute, and the plain structs they take (see
// attention.hpp for the design). Layouts, all row-major and contiguous:
//   q, o, dout, dq : (batch, q_heads, q_len, head_dim)        f16 or bf16
//   k, v, dk, dv   : (batch, kv_heads, kv_stride, head_dim)   rows [0, kv_len) of each head used
//   lse, delta     : (batch, q_heads, q_len)                  f32
//   key_mask       : (batch, kv_stride) uint8, 1 = attend, 0 = padding (null: every key)
// as cpu::attention_forward / attention_backward (rlxf/cpu/attention.hpp). q head h reads kv
// head h / (q_heads / kv_heads). With S = scale Q K^T, hidden keys (padding, keys >= kv_len,
// and under `causal` keys j > i + kv_len - q_len: the mask aligned to the bottom-right
// corner) get S = -inf; o = softmax(S) V, lse = logsumexp of each row of S. A row with no
// visible key gets o = 0 and lse = +inf, as on the CPU.
// Differences from the CPU reference: backward WRITES dq, dk, dv (the CPU adds into them);
// rows [kv_len, kv_stride) of dk, dv are left untouched.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "rlxf/core/error.hpp"
#include "rlxf/cuda/platform.hpp"

namespace rlxf::cuda::attention {

// The problem, as the caller states it (cpu::AttentionShape's fields).
struct Shape {
  int batch = 0, q_heads = 0, kv_heads = 0, q_len = 0, kv_len = 0, head_dim = 0;
  int kv_capacity = 0;  // rows per kv head in k, v, dk, dv and per batch row of key_mask; 0: kv_len
};

struct Options {
  bool causal = false;                     // bottom-right aligned: query i sees key j <= i + kv_len - q_len
  float scale = 0.0f;                      // 0: 1 / sqrt(head_dim)
  const std::uint8_t* key_mask = nullptr;  // (batch, kv_stride), 1 = attend
};

// Shape and options as the kernels read them.
struct Dims {
  int batch, q_heads, kv_heads, q_len, kv_len, kv_stride, head_dim;
  bool causal;
  float scale;       // softmax scale
  float scale_log2;  // scale * log2(e): the kernels exponentiate with exp2
  const std::uint8_t* key_mask;
};

inline constexpr float log2e = 1.4426950408889634f;
inline constexpr float ln2 = 0.6931471805599453f;

// Checks the shape and fills in the defaults.
inline Dims make_dims(const Shape& s, const Options& opt) {
  RLXF_REQUIRE(s.batch >= 0 && s.q_len >= 0 && s.kv_len >= 0, "attention: negative extent");
  RLXF_REQUIRE(s.head_dim > 0, "attention: head_dim must be positive");
  RLXF_REQUIRE(s.kv_heads > 0 && s.q_heads >= s.kv_heads && s.q_heads % s.kv_heads == 0,
               "attention: q_heads (", s.q_heads, ") must be a positive multiple of kv_heads (", s.kv_heads, ")");
  RLXF_REQUIRE(s.kv_capacity == 0 || s.kv_capacity >= s.kv_len, "attention: kv_capacity (", s.kv_capacity,
               ") is smaller than kv_len (", s.kv_len, ")");
  RLXF_REQUIRE(s.q_heads <= 65535 && s.batch <= 65535, "attention: q_heads and batch must fit a grid extent (65535)");
  RLXF_REQUIRE(std::isfinite(opt.scale), "attention: scale must be finite");
  Dims d{};
  d.batch = s.batch;
  d.q_heads = s.q_heads;
  d.kv_heads = s.kv_heads;
  d.q_len = s.q_len;
  d.kv_len = s.kv_len;
  d.kv_stride = s.kv_capacity != 0 ? s.kv_capacity : s.kv_len;
  d.head_dim = s.head_dim;
  d.causal = opt.causal;
  d.scale = opt.scale != 0.0f ? opt.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(s.head_dim)));
  d.scale_log2 = d.scale * log2e;
  d.key_mask = opt.key_mask;
  return d;
}

template <class T>
struct ForwardParams {
  Dims dims;
  const T* q;
  const T* k;
  const T* v;
  T* o;
  float* lse;  // natural-log logsumexp of each row of S (what backward needs)
};

template <class T>
struct BackwardParams {
  Dims dims;
  const T* q;
  const T* k;
  const T* v;
  const T* o;      // forward's output
  const T* dout;   // dL/do
  const float* lse;  // forward's lse
  // f32 workspace (backward_workspace() in attention.hpp gives the sizes):
  float* delta;     // (batch, q_heads, q_len): rowsum(dout * o)
  float* dq_accum;  // (splits, batch, q_heads, q_len, head_dim): dq before scaling
  // false: one dq_accum slice, every key-tile CTA adds into it with f32 atomics (the
  // summation order, so the last bits of dq, vary between runs); true: one slice per key
  // tile, written by that tile's CTA alone and summed in a fixed order (bitwise
  // reproducible, splits times the memory).
  bool deterministic;
  T* dq;
  T* dk;
  T* dv;
};

}  // namespace rlxf::cuda::attention
