#pragma once
// f32 GEMM on the CUDA cores (SIMT), for f32 training and as the baseline of the
// tensor-core kernels. Each thread computes a (thread_m x thread_n) block of C in registers
// (2D register blocking: thread_m + thread_n shared loads feed thread_m * thread_n FMAs),
// from shared tiles stored K-major, As (block_k x block_m) and Bs (block_k x block_n), so
// a thread's operands for one k are contiguous and move as 128-bit shared loads. Global
// tiles arrive through registers with the same two-stage double buffering as the WMMA
// kernel (TileLoader); A (not transposed) and B (transposed) are transposed on their way
// into shared memory.
#include "rlxf/cuda/gemm/epilogue.hpp"
#include "rlxf/cuda/gemm/params.hpp"
#include "rlxf/cuda/gemm/tile_loader.hpp"
#include "rlxf/cuda/numeric.hpp"
#include "rlxf/cuda/platform.hpp"

namespace rlxf::cuda {

template <int BlockM, int BlockN, int BlockK, int ThreadM, int ThreadN>
struct SimtGemmTile {
  static constexpr int block_m = BlockM, block_n = BlockN, block_k = BlockK;
  static constexpr int thread_m = ThreadM, thread_n = ThreadN;
  static constexpr int threads_m = BlockM / ThreadM, threads_n = BlockN / ThreadN;
  static constexpr int threads = threads_m * threads_n;
  static constexpr int pad = 4;  // floats added to each shared row (16 bytes)
  static_assert(BlockM % ThreadM == 0 && BlockN % ThreadN == 0, "thread tiles must tile the CTA tile");
  static_assert(ThreadM % 4 == 0 && ThreadN % 4 == 0, "thread tiles load 4 floats at a time");
  static_assert(threads % warp_size == 0 && threads <= 1024, "whole warps, at most 1024 threads");
};

template <class Tile, bool TransA, bool TransB>
struct SimtGemm {
  using T = float;
  using Params = GemmParams<float, float>;
  static constexpr int max_threads = Tile::threads;
  static constexpr int min_blocks = 1;
  static constexpr int stages = 2;

  static constexpr int a_rows = TransA ? Tile::block_k : Tile::block_m;  // A tile as stored
  static constexpr int a_cols = TransA ? Tile::block_m : Tile::block_k;
  static constexpr int b_rows = TransB ? Tile::block_n : Tile::block_k;  // B tile as stored
  static constexpr int b_cols = TransB ? Tile::block_k : Tile::block_n;
  static constexpr int lda_s = Tile::block_m + Tile::pad, ldb_s = Tile::block_n + Tile::pad;
  static constexpr int a_stage = Tile::block_k * lda_s, b_stage = Tile::block_k * ldb_s;
  static constexpr long b_offset = long(stages) * a_stage * 4;
  static constexpr int shared_bytes = int(b_offset + long(stages) * b_stage * 4);
  static_assert(b_offset % 128 == 0, "shared regions start 128-byte aligned");

  using LoaderA = TileLoader<float, a_rows, a_cols, Tile::threads>;
  using LoaderB = TileLoader<float, b_rows, b_cols, Tile::threads>;

  static LaunchConfig launch_config(const Params& p) {
    return {Dim3{ceil_div(p.n, Tile::block_n), ceil_div(p.m, Tile::block_m), p.batch},
            Dim3{Tile::threads, 1, 1}, shared_bytes};
  }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    const int m0 = ctx.block_idx().y * Tile::block_m, n0 = ctx.block_idx().x * Tile::block_n;
    const long z = ctx.block_idx().z;
    const float* a = p.a + z * p.stride_a;
    const float* b = p.b + z * p.stride_b;
    float* c = p.c + z * p.stride_c;
    const auto sa = ctx.template shared<float>(0, stages * a_stage, "As");
    const auto sb = ctx.template shared<float>(b_offset, stages * b_stage, "Bs");
    const int tm = ctx.thread_rank() / Tile::threads_n * Tile::thread_m;
    const int tn = ctx.thread_rank() % Tile::threads_n * Tile::thread_n;

    float acc[Tile::thread_m][Tile::thread_n] = {};
    LoaderA load_a;
    LoaderB load_b;
    const bool vec_a = LoaderA::vectorisable(a, p.lda), vec_b = LoaderB::vectorisable(b, p.ldb);
    auto fetch = [&](int k0) {
      if constexpr (TransA) load_a.load(ctx, a, p.lda, k0, m0, p.k, p.m, vec_a);
      else load_a.load(ctx, a, p.lda, m0, k0, p.m, p.k, vec_a);
      if constexpr (TransB) load_b.load(ctx, b, p.ldb, n0, k0, p.n, p.k, vec_b);
      else load_b.load(ctx, b, p.ldb, k0, n0, p.k, p.n, vec_b);
    };
    auto stash = [&](int stage) {  // into K-major tiles
      load_a.template store<!TransA>(ctx, sa, long(stage) * a_stage, lda_s);
      load_b.template store<TransB>(ctx, sb, long(stage) * b_stage, ldb_s);
    };

    const int k_tiles = ceil_div(p.k, Tile::block_k);
    if (k_tiles > 0) {
      fetch(0);
      stash(0);
      ctx.sync();
    }
    for (int kt = 0; kt < k_tiles; ++kt) {
      const long a_base = long(kt % stages) * a_stage, b_base = long(kt % stages) * b_stage;
      if (kt + 1 < k_tiles) fetch((kt + 1) * Tile::block_k);
RLXF_UNROLL
      for (int k = 0; k < Tile::block_k; ++k) {
        Vec<float, 4> av[Tile::thread_m / 4], bv[Tile::thread_n / 4];
RLXF_UNROLL
        for (int i = 0; i < Tile::thread_m / 4; ++i) sa.load(av[i], a_base + long(k) * lda_s + tm + 4 * i);
RLXF_UNROLL
        for (int j = 0; j < Tile::thread_n / 4; ++j) sb.load(bv[j], b_base + long(k) * ldb_s + tn + 4 * j);
RLXF_UNROLL
        for (int i = 0; i < Tile::thread_m; ++i)
RLXF_UNROLL
          for (int j = 0; j < Tile::thread_n; ++j) acc[i][j] += av[i / 4][i % 4] * bv[j / 4][j % 4];
      }
      if (kt + 1 < k_tiles) stash((kt + 1) % stages);
      ctx.sync();
    }

RLXF_UNROLL
    for (int i = 0; i < Tile::thread_m; ++i)
RLXF_UNROLL
      for (int j = 0; j < Tile::thread_n; ++j) {
        const int row = m0 + tm + i, col = n0 + tn + j;
        if (row < p.m && col < p.n) write_result(p, c, row, col, acc[i][j]);
      }
  }
};

}  // namespace rlxf::cuda
