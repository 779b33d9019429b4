#pragma once
// The GEMM tile configurations rlxf ships, and which one a shape gets. Shared memory and
// registers per configuration, measured by ptxas for sm_80 and sm_90, are in docs/cuda.md.
#include "rlxf/cuda/gemm/simt_gemm.hpp"
#include "rlxf/cuda/kernel_list.hpp"
#include "rlxf/cuda/gemm/wmma_gemm.hpp"

namespace rlxf::cuda::gemm_tiles {

// Tensor cores, large: 128 x 128 CTA tiles, 8 warps of 64 x 32 (4 x 2 fragments, 64 f32
// accumulator registers a thread), block_k 32. 45 KB of shared memory (two stages plus the
// staging tiles), under the 48 KB that needs no opt-in, so two CTAs fit an SM's 164 KB
// (A100) with room, and 256 threads x 2 CTAs leave register headroom below 128 a thread.
using WmmaLarge = WmmaGemmTile<128, 128, 32, 64, 32>;
// Tensor cores, small: 64 x 64 CTA tiles, 4 warps of 32 x 32, for shapes whose large-tile
// grid would leave SMs idle (fewer CTAs than SMs): four times the CTAs for the same C.
using WmmaSmall = WmmaGemmTile<64, 64, 32, 32, 32>;
// f32 SIMT, large: 128 x 128 tiles, 256 threads of 8 x 8 results (the classic SGEMM shape:
// 16 shared loads feed 64 FMAs per k), block_k 8, 17 KB of shared memory.
using SimtLarge = SimtGemmTile<128, 128, 8, 8, 8>;
// f32 SIMT, small: 64 x 64 tiles, 256 threads of 4 x 4 results, block_k 16.
using SimtSmall = SimtGemmTile<64, 64, 16, 4, 4>;

// Large tiles when they alone fill every SM at least once (one wave), small tiles otherwise.
inline bool use_large_tiles(int m, int n, int batch, int sm_count) {
  return static_cast<long>(ceil_div(m, 128)) * ceil_div(n, 128) * batch >= sm_count;
}

}  // namespace rlxf::cuda::gemm_tiles

namespace rlxf::cuda {

namespace gemm_detail {
template <template <bool, bool> class Kernel>
using transpositions = KernelList<Kernel<false, false>, Kernel<false, true>, Kernel<true, false>, Kernel<true, true>>;
template <class Tile, class T, class TOut>
struct WmmaFamily {
  template <bool TA, bool TB>
  using kernel = WmmaGemm<Tile, T, TOut, TA, TB>;
};
template <class Tile>
struct SimtFamily {
  template <bool TA, bool TB>
  using kernel = SimtGemm<Tile, TA, TB>;
};
template <class Tile>
using wmma_kernels = concat_kernel_lists<
    transpositions<WmmaFamily<Tile, f16, f16>::template kernel>, transpositions<WmmaFamily<Tile, f16, float>::template kernel>,
    transpositions<WmmaFamily<Tile, bf16, bf16>::template kernel>, transpositions<WmmaFamily<Tile, bf16, float>::template kernel>>;
}  // namespace gemm_detail

// Every GEMM kernel cuda::gemm can launch: 2 tensor-core tiles x (f16, bf16) inputs x (input
// type, f32) outputs x 4 transposition cases, and 2 SIMT tiles x 4 transposition cases.
using shipped_gemm_kernels = concat_kernel_lists<
    gemm_detail::wmma_kernels<gemm_tiles::WmmaLarge>, gemm_detail::wmma_kernels<gemm_tiles::WmmaSmall>,
    gemm_detail::transpositions<gemm_detail::SimtFamily<gemm_tiles::SimtLarge>::template kernel>,
    gemm_detail::transpositions<gemm_detail::SimtFamily<gemm_tiles::SimtSmall>::template kernel>>;

}  // namespace rlxf::cuda
