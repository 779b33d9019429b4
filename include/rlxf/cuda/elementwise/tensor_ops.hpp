#pragma once
// The data-movement and reduction kernels a training step needs besides the math kernels
// (TrainingBackend, concepts.hpp), for the GPU and the emulator:
//   Gather          out[i] (+)= table[ids[i]]: embedding lookup (rows of `dim`); an id outside
//                   the table gives a NaN row (the CPU throws; a kernel cannot);
//   ScatterAddRows  dst[ids[i]] += src[i] (ids null: every i into row 0, i.e. column sums):
//                   the embedding and bias gradients. One thread per column walks the rows in
//                   order, so every sum has the same bits on every run (no float atomics);
//                   an id outside the table is skipped;
//   PermuteHeads    (batch, len, heads, d) token-major <-> (batch, heads, capacity, d)
//                   head-major at row offset `offset` (a KV cache) or capacity = len;
//   Scale           x *= s (f32: gradient clipping);
//   SumOfSquares    sum of x^2 over f32 x, in double: a fixed number of blocks (a function of
//                   n only) each sums a fixed grid-stride slice and reduces it by a fixed tree
//                   in shared memory, then one block adds the block sums by the same tree, so
//                   the result is the same bits on every GPU and run.
// Storage T is f32 or bf16 with f32 math (one rounding at the store), except where noted.
#include <cstdint>

#include "rlxf/core/error.hpp"
#include "rlxf/cuda/elementwise/activations.hpp"  // elementwise_config, the elementwise launch shape
#include "rlxf/cuda/elementwise/common.hpp"
#include "rlxf/cuda/math.hpp"

namespace rlxf::cuda {

// ---- Gather ----

template <class T>
struct GatherParams {
  const std::int32_t* ids = nullptr;  // (tokens)
  const T* table = nullptr;           // (rows, dim)
  T* out = nullptr;                   // (tokens, dim)
  long long tokens = 0, dim = 0, rows = 0;
  bool accumulate = false;  // out += table[ids] (a second embedding added to the first)
};

template <class T>
struct Gather {
  static_assert(ElementwiseStorage<T>);
  using Params = GatherParams<T>;
  static constexpr int max_threads = elementwise::elementwise_threads;
  static constexpr int min_blocks = elementwise::elementwise_min_blocks;
  static LaunchConfig launch_config(const Params& p) { return elementwise::elementwise_config<1>(p.tokens * p.dim); }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    for_each_element<1>(ctx, p.tokens * p.dim, [&](auto, long long e) {
      const long long i = e / p.dim, c = e - i * p.dim;
      const std::int32_t id = p.ids[i];
      float v[1];
      if (id < 0 || id >= p.rows) {
        v[0] = math::quiet_nan();
      } else {
        load<1>(ctx, p.table + static_cast<long long>(id) * p.dim + c, v);
      }
      if (p.accumulate) {
        float o[1];
        load<1>(ctx, p.out + e, o);
        v[0] += o[0];
      }
      store<1>(ctx, p.out + e, v);
    });
  }
};

template <class T, class Launcher>
void gather(const GatherParams<T>& p, Launcher&& launch) {
  RLXF_REQUIRE(p.tokens >= 0 && p.dim >= 1 && p.rows >= 1, "gather: need tokens >= 0, dim >= 1, rows >= 1; got ",
               p.tokens, ", ", p.dim, ", ", p.rows);
  if (p.tokens == 0) return;
  RLXF_REQUIRE(p.ids && p.table && p.out, "gather: null array");
  elementwise::launch_kernel<Gather<T>>(p, launch);
}

// ---- ScatterAddRows ----

template <class TX>
struct ScatterAddRowsParams {
  const std::int32_t* ids = nullptr;  // (count), or nullptr: every row of src into dst row 0
  const TX* src = nullptr;            // (count, dim)
  float* dst = nullptr;               // (rows, dim), f32: += the rows of src
  long long count = 0, dim = 0, rows = 0;
};

template <class TX>
struct ScatterAddRows {
  static_assert(ElementwiseStorage<TX>);
  using Params = ScatterAddRowsParams<TX>;
  static constexpr int max_threads = elementwise::elementwise_threads;
  static constexpr int min_blocks = elementwise::elementwise_min_blocks;
  static LaunchConfig launch_config(const Params& p) { return elementwise::elementwise_config<1>(p.dim); }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    for_each_element<1>(ctx, p.dim, [&](auto, long long c) {
      if (p.ids) {
        for (long long i = 0; i < p.count; ++i) {
          const std::int32_t id = p.ids[i];
          if (id < 0 || id >= p.rows) continue;
          float v[1];
          load<1>(ctx, p.src + i * p.dim + c, v);
          p.dst[static_cast<long long>(id) * p.dim + c] += v[0];
        }
      } else {
        float sum = 0.0f;
        for (long long i = 0; i < p.count; ++i) {
          float v[1];
          load<1>(ctx, p.src + i * p.dim + c, v);
          sum += v[0];
        }
        p.dst[c] += sum;
      }
    });
  }
};

template <class TX, class Launcher>
void scatter_add_rows(const ScatterAddRowsParams<TX>& p, Launcher&& launch) {
  RLXF_REQUIRE(p.count >= 0 && p.dim >= 0 && p.rows >= 1, "scatter_add_rows: need count >= 0, dim >= 0, rows >= 1");
  if (p.count == 0 || p.dim == 0) return;
  RLXF_REQUIRE(p.src && p.dst, "scatter_add_rows: null array");
  elementwise::launch_kernel<ScatterAddRows<TX>>(p, launch);
}

// ---- PermuteHeads ----

template <class T>
struct PermuteHeadsParams {
  const T* x = nullptr;
  T* y = nullptr;
  long long batch = 0, len = 0, heads = 0, head_dim = 0;
  long long capacity = 0, offset = 0;  // rows of each head-major head, and the first written
  bool split = true;  // true: x token-major (batch, len, heads * d) -> y head-major; false: back
};

template <class T>
struct PermuteHeads {
  static_assert(ElementwiseStorage<T>);
  using Params = PermuteHeadsParams<T>;
  static constexpr int max_threads = elementwise::elementwise_threads;
  static constexpr int min_blocks = elementwise::elementwise_min_blocks;
  static LaunchConfig launch_config(const Params& p) {
    return elementwise::elementwise_config<1>(p.batch * p.len * p.heads * p.head_dim);
  }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    // e walks the token-major layout: ((b len + t) heads + h) d + k.
    for_each_element<1>(ctx, p.batch * p.len * p.heads * p.head_dim, [&](auto, long long e) {
      const long long k = e % p.head_dim, rest = e / p.head_dim;
      const long long h = rest % p.heads, bt = rest / p.heads;
      const long long t = bt % p.len, b = bt / p.len;
      const long long head_major = ((b * p.heads + h) * p.capacity + p.offset + t) * p.head_dim + k;
      if (p.split) p.y[head_major] = p.x[e];
      else p.y[e] = p.x[head_major];
    });
  }
};

template <class T, class Launcher>
void permute_heads(const PermuteHeadsParams<T>& p, Launcher&& launch) {
  RLXF_REQUIRE(p.batch >= 0 && p.len >= 0 && p.heads >= 0 && p.head_dim >= 0 && p.offset >= 0 &&
                   p.offset + p.len <= p.capacity,
               "permute_heads: rows [", p.offset, ", ", p.offset + p.len, ") exceed the capacity ", p.capacity);
  if (p.batch * p.len * p.heads * p.head_dim == 0) return;
  RLXF_REQUIRE(p.x && p.y, "permute_heads: null array");
  elementwise::launch_kernel<PermuteHeads<T>>(p, launch);
}

// ---- Scale ----

struct ScaleParams {
  float* x = nullptr;
  long long n = 0;
  float s = 1.0f;
};

template <int V>
struct Scale {
  using Params = ScaleParams;
  static constexpr int max_threads = elementwise::elementwise_threads;
  static constexpr int min_blocks = elementwise::elementwise_min_blocks;
  static LaunchConfig launch_config(const Params& p) { return elementwise::elementwise_config<V>(p.n); }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    for_each_element<V>(ctx, p.n, [&](auto width, long long i) {
      constexpr int W = decltype(width)::value;
      float x[W];
      load<W>(ctx, p.x + i, x);
      RLXF_UNROLL
      for (int k = 0; k < W; ++k) x[k] *= p.s;
      store<W>(ctx, p.x + i, x);
    });
  }
};

template <class Launcher>
void scale(const ScaleParams& p, Launcher&& launch) {
  RLXF_REQUIRE(p.n >= 0 && (p.n == 0 || p.x), "scale: null array or negative n = ", p.n);
  if (p.n == 0) return;
  if (elementwise::all_aligned16(p.x)) elementwise::launch_kernel<Scale<vec128<float>>>(p, launch);
  else elementwise::launch_kernel<Scale<1>>(p, launch);
}

// ---- SumOfSquares ----

struct SumOfSquaresParams {
  const float* x = nullptr;  // (n); the second stage reads `partial`
  double* partial = nullptr;  // (blocks of the first stage)
  double* out = nullptr;      // (1): the total, written by the second stage
  long long n = 0;
  int blocks = 1;             // of the first stage: sum_of_squares_blocks(n)
};

inline constexpr int sum_of_squares_threads = 256;

// First-stage blocks for n elements: one per 16 Ki elements, at most 128 (a function of n
// alone, so the order of the sums never depends on the GPU).
inline int sum_of_squares_blocks(long long n) {
  const long long b = (n + (std::int64_t{1} << 14) - 1) >> 14;
  return b < 1 ? 1 : b > 128 ? 128 : static_cast<int>(b);
}

namespace elementwise {
// The block's values v (one a thread) summed by a fixed tree over shared memory; thread 0
// returns the total.
template <class Ctx>
RLXF_DEVICE double block_tree_sum(Ctx& ctx, double v) {
  auto s = ctx.template shared<double>(0, sum_of_squares_threads, "sum_of_squares");
  const int t = ctx.thread_rank();
  s[t] = v;
  for (int half = sum_of_squares_threads / 2; half > 0; half /= 2) {
    ctx.sync();
    if (t < half) s[t] = s[t] + s[t + half];
  }
  ctx.sync();
  return s[0];
}
}  // namespace elementwise

// Stage 1 (Final = false): partial[block] = the sum over its slice; stage 2 (Final = true,
// one block): out[0] = the sum of the partials.
template <bool Final>
struct SumOfSquares {
  using Params = SumOfSquaresParams;
  static constexpr int max_threads = sum_of_squares_threads;
  static constexpr int min_blocks = 1;
  static constexpr int shared_bytes = sum_of_squares_threads * static_cast<int>(sizeof(double));  // the tree
  static LaunchConfig launch_config(const Params& p) {
    return {{Final ? 1 : p.blocks, 1, 1}, {sum_of_squares_threads, 1, 1}, shared_bytes};
  }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    const int t = ctx.thread_rank();
    double v = 0;
    if constexpr (Final) {
      for (int i = t; i < p.blocks; i += sum_of_squares_threads) v += p.partial[i];
    } else {
      const long long stride = static_cast<long long>(p.blocks) * sum_of_squares_threads;
      for (long long i = static_cast<long long>(ctx.block_idx().x) * sum_of_squares_threads + t; i < p.n; i += stride) {
        const double x = p.x[i];
        v += x * x;
      }
    }
    const double total = elementwise::block_tree_sum(ctx, v);
    if (t == 0) {
      if constexpr (Final) p.out[0] = total;
      else p.partial[ctx.block_idx().x] = total;
    }
  }
};

// Queues both stages; the caller reads out[0] after them. partial holds p.blocks doubles.
template <class Launcher>
void sum_of_squares(const SumOfSquaresParams& p, Launcher&& launch) {
  RLXF_REQUIRE(p.n >= 0 && p.partial && p.out && (p.n == 0 || p.x) && p.blocks == sum_of_squares_blocks(p.n),
               "sum_of_squares: null array, negative n or a block count other than sum_of_squares_blocks(n)");
  elementwise::launch_kernel<SumOfSquares<false>>(p, launch);
  elementwise::launch_kernel<SumOfSquares<true>>(p, launch);
}

}  // namespace rlxf::cuda
