#pragma once
// Tensor-core GEMM (f16 or bf16 inputs, f32 accumulation) through WMMA m16n16k16 fragments.
//
// Structure (CUTLASS's hierarchy, CUDA.md "GEMM progression"): a CTA computes a
// (block_m x block_n) tile of C, split among warps as (warp_m x warp_n) warp tiles, each a
// grid of 16 x 16 accumulator fragments. K advances block_k at a time through two
// shared-memory stages: while the warps multiply the tiles of stage s, each thread holds the
// next tiles in registers (TileLoader), then stores them into stage s ^ 1: one barrier per
// K step. Shared tiles keep the orientation A and B have in global memory (so loads are
// 128-bit and coalesced whatever the transposition) and the fragment's row_major/col_major
// layout absorbs the transposition. Rows are padded by 8 elements (16 bytes), which moves
// consecutive rows to different banks; WMMA needs plain row/column-major tiles, so padding is
// the only conflict remedy open to it (XOR swizzles need mma.sync + ldmatrix).
// The epilogue goes fragment by fragment through a per-warp 16 x 16 f32 staging tile in
// shared memory (fragment element positions are unspecified), where lanes apply alpha, beta,
// bias and GELU and write C with bounds checks.
#include <type_traits>

#include "rlxf/cuda/gemm/epilogue.hpp"
#include "rlxf/cuda/gemm/params.hpp"
#include "rlxf/cuda/gemm/tile_loader.hpp"
#include "rlxf/cuda/numeric.hpp"
#include "rlxf/cuda/platform.hpp"
#include "rlxf/cuda/wmma_tags.hpp"

namespace rlxf::cuda {

// A WMMA GEMM tile configuration: every other constant derives from these five.
template <int BlockM, int BlockN, int BlockK, int WarpM, int WarpN>
struct WmmaGemmTile {
  static constexpr int block_m = BlockM, block_n = BlockN, block_k = BlockK;
  static constexpr int warp_m = WarpM, warp_n = WarpN;
  static constexpr int warps_m = BlockM / WarpM, warps_n = BlockN / WarpN;
  static constexpr int warps = warps_m * warps_n, threads = warps * warp_size;
  static constexpr int frags_m = WarpM / 16, frags_n = WarpN / 16, k_steps = BlockK / 16;
  static constexpr int pad = 8;  // elements added to each shared row (16 bytes of a 16-bit type)
  static_assert(BlockM % WarpM == 0 && BlockN % WarpN == 0, "warp tiles must tile the CTA tile");
  static_assert(WarpM % 16 == 0 && WarpN % 16 == 0 && BlockK % 16 == 0,
                "warp tiles and block_k are multiples of the 16 x 16 x 16 fragment");
  static_assert(threads <= 1024, "at most 1024 threads per CTA");
};

template <class Tile, class T, class TOut, bool TransA, bool TransB>
struct WmmaGemm {
  static_assert(std::is_same_v<T, f16> || std::is_same_v<T, bf16>, "WMMA GEMM inputs are f16 or bf16");
  using Params = GemmParams<T, TOut>;
  static constexpr int max_threads = Tile::threads;
  static constexpr int min_blocks = 1;
  static constexpr int stages = 2;

  // A tile as stored: (block_m x block_k), or (block_k x block_m) when A is transposed.
  static constexpr int a_rows = TransA ? Tile::block_k : Tile::block_m;
  static constexpr int a_cols = TransA ? Tile::block_m : Tile::block_k;
  // B tile as stored: (block_k x block_n), or (block_n x block_k) when B is transposed.
  static constexpr int b_rows = TransB ? Tile::block_n : Tile::block_k;
  static constexpr int b_cols = TransB ? Tile::block_k : Tile::block_n;
  static constexpr int lda_s = a_cols + Tile::pad, ldb_s = b_cols + Tile::pad;
  static constexpr int a_stage = a_rows * lda_s, b_stage = b_rows * ldb_s;  // elements
  static constexpr int staging = 16 * 16;                                   // f32 per warp
  static constexpr long a_offset = 0;
  static constexpr long b_offset = a_offset + long(stages) * a_stage * long(sizeof(T));
  static constexpr long c_offset = b_offset + long(stages) * b_stage * long(sizeof(T));
  static constexpr int shared_bytes = int(c_offset + long(Tile::warps) * staging * 4);
  static_assert(b_offset % 128 == 0 && c_offset % 128 == 0,
                "shared regions start 128-byte aligned (WMMA tiles need 32)");

  using LoaderA = TileLoader<T, a_rows, a_cols, Tile::threads>;
  using LoaderB = TileLoader<T, b_rows, b_cols, Tile::threads>;
  using LayoutA = std::conditional_t<TransA, wmma::col_major, wmma::row_major>;
  using LayoutB = std::conditional_t<TransB, wmma::col_major, wmma::row_major>;

  static LaunchConfig launch_config(const Params& p) {
    return {Dim3{ceil_div(p.n, Tile::block_n), ceil_div(p.m, Tile::block_m), p.batch},
            Dim3{Tile::threads, 1, 1}, shared_bytes};
  }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    const int m0 = ctx.block_idx().y * Tile::block_m, n0 = ctx.block_idx().x * Tile::block_n;
    const long z = ctx.block_idx().z;
    const T* a = p.a + z * p.stride_a;
    const T* b = p.b + z * p.stride_b;
    TOut* c = p.c + z * p.stride_c;
    const auto sa = ctx.template shared<T>(a_offset, stages * a_stage, "sA");
    const auto sb = ctx.template shared<T>(b_offset, stages * b_stage, "sB");
    const auto sc = ctx.template shared<float>(c_offset, Tile::warps * staging, "sC");

    const int warp = ctx.warp();
    const int wm = warp / Tile::warps_n * Tile::warp_m, wn = warp % Tile::warps_n * Tile::warp_n;
    typename Ctx::template fragment<wmma::accumulator, 16, 16, 16, float> acc[Tile::frags_m][Tile::frags_n];
RLXF_UNROLL
    for (int i = 0; i < Tile::frags_m; ++i)
RLXF_UNROLL
      for (int j = 0; j < Tile::frags_n; ++j) ctx.fill_fragment(acc[i][j], 0.0f);

    LoaderA load_a;
    LoaderB load_b;
    const bool vec_a = LoaderA::vectorisable(a, p.lda), vec_b = LoaderB::vectorisable(b, p.ldb);
    // Fetches the K tile starting at k0 into registers.
    auto fetch = [&](int k0) {
      if constexpr (TransA) load_a.load(ctx, a, p.lda, k0, m0, p.k, p.m, vec_a);
      else load_a.load(ctx, a, p.lda, m0, k0, p.m, p.k, vec_a);
      if constexpr (TransB) load_b.load(ctx, b, p.ldb, n0, k0, p.n, p.k, vec_b);
      else load_b.load(ctx, b, p.ldb, k0, n0, p.k, p.n, vec_b);
    };
    auto stash = [&](int stage) {
      load_a.template store<false>(ctx, sa, long(stage) * a_stage, lda_s);
      load_b.template store<false>(ctx, sb, long(stage) * b_stage, ldb_s);
    };

    const int k_tiles = ceil_div(p.k, Tile::block_k);
    if (k_tiles > 0) {
      fetch(0);
      stash(0);
      ctx.sync();
    }
    for (int kt = 0; kt < k_tiles; ++kt) {
      const int stage = kt % stages;
      if (kt + 1 < k_tiles) fetch((kt + 1) * Tile::block_k);
RLXF_UNROLL
      for (int ks = 0; ks < Tile::k_steps; ++ks) {
        typename Ctx::template fragment<wmma::matrix_a, 16, 16, 16, T, LayoutA> fa[Tile::frags_m];
        typename Ctx::template fragment<wmma::matrix_b, 16, 16, 16, T, LayoutB> fb[Tile::frags_n];
RLXF_UNROLL
        for (int i = 0; i < Tile::frags_m; ++i) {
          const int r = wm + i * 16, k = ks * 16;  // (r, k) of the A tile
          ctx.load_matrix_sync(fa[i], sa.ptr(long(stage) * a_stage + (TransA ? long(k) * lda_s + r : long(r) * lda_s + k)), lda_s);
        }
RLXF_UNROLL
        for (int j = 0; j < Tile::frags_n; ++j) {
          const int k = ks * 16, col = wn + j * 16;  // (k, col) of the B tile
          ctx.load_matrix_sync(fb[j], sb.ptr(long(stage) * b_stage + (TransB ? long(col) * ldb_s + k : long(k) * ldb_s + col)), ldb_s);
        }
RLXF_UNROLL
        for (int i = 0; i < Tile::frags_m; ++i)
RLXF_UNROLL
          for (int j = 0; j < Tile::frags_n; ++j) ctx.mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      }
      if (kt + 1 < k_tiles) stash((kt + 1) % stages);
      ctx.sync();
    }

    // Epilogue, one fragment at a time through this warp's staging tile.
    const long staged = long(warp) * staging;
RLXF_UNROLL
    for (int i = 0; i < Tile::frags_m; ++i)
RLXF_UNROLL
      for (int j = 0; j < Tile::frags_n; ++j) {
        ctx.store_matrix_sync(sc.ptr(staged), acc[i][j], 16, wmma::Layout::row_major);
        ctx.syncwarp();
RLXF_UNROLL
        for (int e = 0; e < 8; ++e) {
          const int index = e * warp_size + ctx.lane();  // consecutive lanes, consecutive columns
          const int row = m0 + wm + i * 16 + index / 16, col = n0 + wn + j * 16 + index % 16;
          const float v = sc[staged + index];
          if (row < p.m && col < p.n) write_result(p, c, row, col, v);
        }
        ctx.syncwarp();
      }
  }
};

}  // namespace rlxf::cuda
