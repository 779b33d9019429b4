#pragma once
// What the layer-norm and RMS-norm kernels share:
// - the shipped row configurations (NormForwardTraits, NormBackwardTraits);
// - for_each_chunk, the walk over a thread's chunks of a row (registers first, then the
//   columns beyond them);
// - the deterministic reduction of the parameter gradients. The backward kernel gives each
//   block a contiguous group of rows; the block sums dy * xhat (and dy) of its rows for each
//   column it owns, in row order, into its own row of an f32 workspace (blocks, K * C).
//   ParamGradReduce then adds the blocks' partial sums column by column in a fixed order
//   into dgamma (and dbeta). No float atomics: the same launch gives bit-identical results.
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/elementwise/common.hpp"

namespace rlxf::cuda {

namespace elementwise {

// Forward: 16 elements a thread in registers (4 chunks of 4 f32, or 2 of 8 bf16), up to 512
// threads: rows up to 8192 columns are read from global memory once (LLaMA-7B's C = 4096
// takes 256 threads, GPT-2's 768 takes 128). 512 threads leave ptxas 128 registers a
// thread, but min_blocks 2 caps them at 64 (ptxas: 44 to 56, no spills), so two 512-thread
// or eight 128-thread blocks fit an SM. The scalar variant (ragged widths) keeps 8: 16
// unrolled scalar chunks, each with its own address and bound, took 128 registers.
template <class T, int V>
using NormForwardTraits = RowTraits<T, 512, V == 1 ? 8 : 16, V, 2>;
// Backward: x and dy of 8 columns a thread in registers, with their dgamma / dbeta partial
// sums (32 values), up to 512 threads: rows up to 4096 columns stay in registers; wider rows
// reread the rest from L2 and keep its partial sums in the workspace. ptxas gives these 74 to
// 114 registers (of the 128 that 512 threads allow); capping them at 64 (min_blocks 2)
// spilled 12 to 168 bytes, so the cap stays at 128.
template <class T, int V>
using NormBackwardTraits = RowTraits<T, 512, 8, V, 1>;

// Thread t's chunks of a row of C columns in a block of `threads` threads: cached(k, col)
// for each register chunk k (unrolled, so k indexes registers) whose column is in the row,
// then beyond(col) for the chunks past the registers.
template <class Traits, class Cached, class Beyond>
RLXF_DEVICE void for_each_chunk(int C, int t, int threads, Cached&& cached, Beyond&& beyond) {
  constexpr int V = Traits::vec;
  RLXF_UNROLL
  for (int k = 0; k < Traits::chunks; ++k) {
    const int col = (k * threads + t) * V;
    if (col < C) cached(k, col);
  }
  for (int col = (Traits::chunks * threads + t) * V; col < C; col += threads * V) beyond(col);
}

// Bytes of one block_sum scratch array of N values per warp, rounded up to 128.
template <class Traits, int N>
inline constexpr int scratch_bytes = ceil_div(N * Traits::max_warps * 4, 128) * 128;

}  // namespace elementwise

// Blocks of the norm backward kernels for N rows, at most `max_blocks`: every block takes
// ceil(N / max_blocks) consecutive rows (the last one possibly fewer), so the workspace has
// one partial row per block and the final sums run over at most max_blocks partials.
struct NormBackwardGrid {
  int blocks = 0;
  int rows_per_block = 0;
};
RLXF_HOST_DEVICE int norm_backward_rows_per_block(int N, int max_blocks) { return ceil_div(N, max_blocks); }
inline NormBackwardGrid norm_backward_grid(int N, int max_blocks) {
  RLXF_REQUIRE(max_blocks >= 1, "max_blocks must be at least 1, got ", max_blocks);
  if (N <= 0) return {};
  const int rows = norm_backward_rows_per_block(N, max_blocks);
  return {ceil_div(N, rows), rows};
}
// 512 blocks: four per SM on an A100 (108 SMs), two on an H100 (132), enough to fill the
// GPU for C >= 768 while keeping the workspace (blocks x 2C floats, 3 MB at C = 768) and the
// final pass over it small next to the N x C tensors.
inline constexpr int norm_backward_max_blocks = 512;

struct ParamGradReduceParams {
  const float* workspace = nullptr;  // (blocks, K * C): each block's partial sums
  float* out0 = nullptr;             // (C): += the column sums of workspace[:, 0:C]
  float* out1 = nullptr;             // (C): += those of workspace[:, C:2C] (K = 2), or nullptr
  int blocks = 0, C = 0, K = 1;
};

// out[j] += sum over blocks b of workspace[b, j], b in a fixed order: thread (x, y) of a
// 32 x 8 block sums b = y, y + 8, ... for column j (a warp reads 32 consecutive columns),
// then the 8 partial sums of a column are added in y order.
struct ParamGradReduce {
  using Params = ParamGradReduceParams;
  static constexpr int columns = 32, groups = 8;
  static constexpr int max_threads = columns * groups;
  static constexpr int min_blocks = 1;
  static constexpr int shared_bytes = max_threads * 4;

  static LaunchConfig launch_config(const Params& p) {
    return {{ceil_div(p.K * p.C, columns), 1, 1}, {columns, groups, 1}, shared_bytes};
  }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    auto partial = ctx.template shared<float>(0, max_threads, "partial");
    const int x = ctx.thread_idx().x, y = ctx.thread_idx().y;
    const long width = static_cast<long>(p.K) * p.C;
    const long j = static_cast<long>(ctx.block_idx().x) * columns + x;
    float sum = 0.0f;
    if (j < width)
      for (int b = y; b < p.blocks; b += groups) sum += p.workspace[b * width + j];
    partial[y * columns + x] = sum;
    ctx.sync();
    if (y == 0 && j < width) {
      float total = 0.0f;
      RLXF_UNROLL
      for (int g = 0; g < groups; ++g) {
        const float s = partial[g * columns + x];
        total += s;
      }
      if (j < p.C) p.out0[j] += total;
      else if (p.out1) p.out1[j - p.C] += total;
    }
  }
};

}  // namespace rlxf::cuda
