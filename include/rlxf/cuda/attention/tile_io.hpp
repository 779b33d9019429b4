#pragma once
// Device helpers the attention kernels share: moving row tiles between global and shared
// memory, and the key bias of a key tile.
#include <cstdint>

#include "rlxf/cuda/attention/params.hpp"
#include "rlxf/cuda/math.hpp"
#include "rlxf/cuda/numeric.hpp"
#include "rlxf/cuda/platform.hpp"
#include "rlxf/cuda/wmma_tags.hpp"

// Loops over fragment arrays are unrolled in full (the arrays must stay in registers on the
// GPU); the k-loops of the products are kept rolled, or ptxas hoists every fragment load of
// the unrolled loop ahead of the MMAs and runs out of registers.
#if defined(__CUDACC__)
#define RLXF_ATTENTION_UNROLL _Pragma("unroll")
#define RLXF_ATTENTION_ROLLED _Pragma("unroll 1")
#else
#define RLXF_ATTENTION_UNROLL
#define RLXF_ATTENTION_ROLLED
#endif

namespace rlxf::cuda::attention {

// Rows [0, Rows) x [0, D) of a row-major matrix with D columns at `src` into the shared
// tile `dst` (leading dimension Ld), 128-bit accesses; rows >= `valid` are filled with
// zeros (the tail of a ragged tile: zero keys give finite scores, zero values keep
// P V finite where P = 0).
template <int Rows, int D, int Ld, int Threads, class Ctx, class Smem, class T>
RLXF_DEVICE void load_rows(Ctx& ctx, const Smem& dst, const T* src, int valid) {
  constexpr int vec = 8;
  constexpr int per_row = D / vec;
  static_assert(D % vec == 0 && Ld % vec == 0, "rows are whole 16-byte vectors");
  for (int e = ctx.thread_rank(); e < Rows * per_row; e += Threads) {
    const int r = e / per_row, c = e % per_row * vec;
    Vec<T, vec> v{};
    if (r < valid) ctx.load(v, src + static_cast<std::int64_t>(r) * D + c);
    dst.store(r * Ld + c, v);
  }
}

// bias[c] = 0 if key j0 + c is visible (below kv_len and not padding), -inf if not.
template <int Bc, int Threads, class Ctx, class Smem>
RLXF_DEVICE void load_key_bias(Ctx& ctx, const Smem& bias, const Dims& dm, int b, int j0) {
  for (int c = ctx.thread_rank(); c < Bc; c += Threads) {
    const int key = j0 + c;
    const bool visible =
        key < dm.kv_len && (dm.key_mask == nullptr || dm.key_mask[static_cast<std::int64_t>(b) * dm.kv_stride + key] != 0);
    bias[c] = visible ? 0.0f : -math::infinity();
  }
}

// A warp writes a 16 x 16 f32 tile, staged row-major in `scratch` (16 floats a row), to
// rows [row0, row0 + 16) x [col0, col0 + 16) of a row-major T matrix with D columns,
// skipping rows >= `valid`; each lane converts and stores 8 elements (row lane / 2, half
// lane % 2) as one 128-bit access, times `factor`.
template <int D, class Ctx, class Smem, class T>
RLXF_DEVICE void store_scratch_rows(Ctx& ctx, const Smem& scratch, T* dst, int row0, int col0, int valid, float factor) {
  const int r = ctx.lane() >> 1, half = ctx.lane() & 1;
  if (row0 + r >= valid) return;
  Vec<T, 8> v;
  RLXF_ATTENTION_UNROLL
  for (int e = 0; e < 8; ++e) v[e] = from_float<T>(factor * float(scratch[r * 16 + half * 8 + e]));
  ctx.store(dst + static_cast<std::int64_t>(row0 + r) * D + col0 + half * 8, v);
}

}  // namespace rlxf::cuda::attention
