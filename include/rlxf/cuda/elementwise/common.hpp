#pragma once
// Building blocks of the elementwise and row-reduction kernels (norms, activations, softmax
// cross-entropy, AdamW, RoPE), the same source on both sides (see device_context.hpp and
// emulate/launch.hpp):
// - element access: V consecutive elements of T (f32 or bf16) to and from f32 registers, as
//   one 128-bit access when V = vec128<T> (the address must be 16-byte aligned) or scalar;
// - reductions: warp sums by butterfly shuffles (every lane ends with the same value), block
//   sums through one shared slot per warp, combined by every thread in warp order, so a
//   result never depends on scheduling;
// - RowTraits: how a row of C elements is spread over a block's threads and how much of it
//   stays in registers between the passes of a row kernel;
// - the host side: dispatch helpers, so the code choosing a kernel variant and its
//   LaunchConfig from the problem shape is shared by the GPU launch and the emulator
//   (launchers: KernelTag in platform.hpp).
#include <cstdint>
#include <type_traits>

#include "rlxf/core/dtype.hpp"
#include "rlxf/cuda/math.hpp"
#include "rlxf/cuda/numeric.hpp"
#include "rlxf/cuda/platform.hpp"

#if defined(__CUDACC__)
#include "rlxf/cuda/launch.hpp"
#endif

namespace rlxf::cuda {

// Storage types of the elementwise kernels: f32, or bf16 with f32 math.
template <class T>
concept ElementwiseStorage = std::is_same_v<T, float> || std::is_same_v<T, bf16>;

namespace elementwise {

// ---- element access ----

// V elements at p into f32 registers: scalar for V = 1, else 128-bit accesses (one for
// V = vec128<T>, several for wider chunks such as 8 floats); p aligned to
// min(V * sizeof(T), 16) bytes.
template <int V, class Ctx, class T>
RLXF_DEVICE void load(Ctx& ctx, const T* p, float (&out)[V]) {
  if constexpr (V == 1) {
    out[0] = to_float(*p);
  } else {
    constexpr int piece = V < vec128<T> ? V : vec128<T>;
    RLXF_UNROLL
    for (int j = 0; j < V; j += piece) {
      Vec<T, piece> v;
      ctx.load(v, p + j);
      RLXF_UNROLL
      for (int i = 0; i < piece; ++i) out[j + i] = to_float(v[i]);
    }
  }
}

// V f32 values rounded to T, to p (accesses and alignment as for load).
template <int V, class Ctx, class T>
RLXF_DEVICE void store(Ctx& ctx, T* p, const float (&in)[V]) {
  if constexpr (V == 1) {
    *p = from_float<T>(in[0]);
  } else {
    constexpr int piece = V < vec128<T> ? V : vec128<T>;
    RLXF_UNROLL
    for (int j = 0; j < V; j += piece) {
      Vec<T, piece> v;
      RLXF_UNROLL
      for (int i = 0; i < piece; ++i) v[i] = from_float<T>(in[j + i]);
      ctx.store(p + j, v);
    }
  }
}

// ---- reductions ----

// Sum over the warp's 32 lanes of each of the N values; every lane returns the same sums
// (at each butterfly step both partners add the same two numbers).
template <int N, class Ctx>
RLXF_DEVICE void warp_sum(Ctx& ctx, float (&v)[N]) {
  RLXF_UNROLL
  for (int mask = warp_size / 2; mask > 0; mask /= 2) {
    RLXF_UNROLL
    for (int k = 0; k < N; ++k) v[k] += ctx.shfl_xor(v[k], mask);
  }
}

// Sums of N values over the whole (1-D) block, returned to every thread. `scratch` holds
// N * (number of warps) floats; consecutive calls must alternate between two scratch arrays
// (the barrier of one call orders the reads of the call before it against the writes of the
// call after it), which saves the trailing barrier. A single-warp block needs no shared
// memory and no barrier.
template <int N, class Ctx, class Shared>
RLXF_DEVICE void block_sum(Ctx& ctx, float (&v)[N], const Shared& scratch) {
  warp_sum(ctx, v);
  const int warps = ctx.block_dim().x / warp_size;
  if (warps == 1) return;
  if (ctx.lane() == 0) {
    RLXF_UNROLL
    for (int k = 0; k < N; ++k) scratch[k * warps + ctx.warp()] = v[k];
  }
  ctx.sync();
  RLXF_UNROLL
  for (int k = 0; k < N; ++k) {
    float total = 0.0f;
    for (int w = 0; w < warps; ++w) {
      const float partial = scratch[k * warps + w];
      total += partial;
    }
    v[k] = total;
  }
}

// ---- iteration ----

// A compile-time chunk width, passed to the per-chunk lambdas below.
template <int W>
using Width = std::integral_constant<int, W>;

// Elements [0, n) spread over the whole grid (1-D blocks and grid): f(Width<V>{}, i) for the
// vectors i = 0, V, 2V, ... below n, then f(Width<1>{}, i) for the last n % V elements.
// With V > 1 every array f touches must be 16-byte aligned.
template <int V, class Ctx, class F>
RLXF_DEVICE void for_each_element(Ctx& ctx, long long n, F&& f) {
  const long long stride = static_cast<long long>(ctx.block_dim().x) * ctx.grid_dim().x;
  const long long first = static_cast<long long>(ctx.block_idx().x) * ctx.block_dim().x + ctx.thread_rank();
  const long long vectors = n / V;
  for (long long k = first; k < vectors; k += stride) f(Width<V>{}, k * V);
  if constexpr (V > 1)
    for (long long i = vectors * V + first; i < n; i += stride) f(Width<1>{}, i);
}

// Elements [0, n) of one row at `base`, spread over a block's threads (thread t of
// `threads`): with V > 1, scalars up to base's first 16-byte boundary, then vectors of V,
// then scalars, so rows of any width and offset move mostly as 128-bit accesses. Every
// other array f touches at the same indices must have the same offset modulo 16 bytes.
template <int V, class Ctx, class T, class F>
RLXF_DEVICE void for_each_in_row(Ctx&, const T* base, int n, int t, int threads, F&& f) {
  int head = 0;
  if constexpr (V > 1) {
    const int offset = static_cast<int>(reinterpret_cast<std::uintptr_t>(base) % 16);
    head = offset == 0 ? 0 : (16 - offset) / static_cast<int>(sizeof(T));
    if (head > n) head = n;
  }
  for (int i = t; i < head; i += threads) f(Width<1>{}, i);
  const int vectors = (n - head) / V;
  for (int k = t; k < vectors; k += threads) f(Width<V>{}, head + k * V);
  if constexpr (V > 1)
    for (int i = head + vectors * V + t; i < n; i += threads) f(Width<1>{}, i);
}

// Blocks of `threads` threads for a grid-stride loop over `items` items: one item a thread,
// at most 65535 blocks (beyond that threads loop), at least one.
inline int grid_stride_blocks(long long items, int threads) {
  const long long blocks = (items + threads - 1) / threads;
  return blocks < 1 ? 1 : blocks > 65535 ? 65535 : static_cast<int>(blocks);
}

// Launches kernel K with the LaunchConfig K::launch_config(p) computes from the shape.
template <class K, class Launcher>
void launch_kernel(const typename K::Params& p, Launcher&& launch) {
  launch(KernelTag<K>{}, K::launch_config(p), p);
}

// ---- row layout ----

// A row of C elements of T processed by one block of `threads` threads (chosen at launch,
// at most MaxThreads) in chunks of V consecutive elements: chunk k of thread t starts at
// column (k * threads + t) * V, so each of a warp's accesses is contiguous (coalesced). The
// first Cached / V chunks of each thread stay in registers between a kernel's passes over
// the row; columns beyond threads * Cached (rows wider than the block holds) are read again
// from global memory (L2) in each pass. V is vec128<T> (128-bit accesses; needs C % V == 0
// and 16-byte aligned rows) or 1 (any width and alignment).
template <class T, int MaxThreads, int Cached, int V, int MinBlocks = 1>
struct RowTraits {
  static_assert(ElementwiseStorage<T>, "row kernels store f32 or bf16");
  static_assert(V == 1 || V == vec128<T>, "chunks are scalars or 128-bit vectors");
  static_assert(Cached % V == 0 && Cached >= V, "registers hold whole chunks");
  static_assert(MaxThreads % warp_size == 0 && MaxThreads <= 1024, "whole warps, at most 1024 threads");
  using element = T;
  static constexpr int max_threads = MaxThreads;
  static constexpr int min_blocks = MinBlocks;  // __launch_bounds__' second argument
  static constexpr int vec = V;
  static constexpr int cached = Cached;         // elements per thread kept in registers
  static constexpr int chunks = Cached / V;     // register chunks per thread
  static constexpr int max_warps = MaxThreads / warp_size;

  // Threads for a row of C columns: enough to keep the whole row in registers
  // (C / Cached), at least min(128, one per chunk) so short rows still spread over four
  // warps, whole warps, at most MaxThreads.
  static constexpr int threads_for(int C) {
    const int vectors = ceil_div(C, V);
    const int for_registers = ceil_div(ceil_div(vectors, chunks), warp_size) * warp_size;
    const int at_least = ceil_div(vectors < 128 ? vectors : 128, warp_size) * warp_size;
    int t = for_registers > at_least ? for_registers : at_least;
    if (t < warp_size) t = warp_size;
    return t > MaxThreads ? MaxThreads : t;
  }
};

// Whether p is aligned for 16-byte vector accesses (a null pointer, an absent optional
// input, counts as aligned).
inline bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }
template <class... P>
bool all_aligned16(const P*... p) {
  return (aligned16(p) && ...);
}

}  // namespace elementwise


}  // namespace rlxf::cuda
