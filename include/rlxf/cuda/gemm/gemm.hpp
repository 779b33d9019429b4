#pragma once
// cuda::gemm: rlxf's own GEMM on the GPU, dispatching the runtime transposition flags and
// the shape to a compiled kernel (see params.hpp for what it computes and configs.hpp for
// the tiles). f16 and bf16 inputs run on tensor cores (WMMA) with C in the input type or
// f32; f32 inputs on the SIMT kernel. nvcc only; the emulator runs the same kernels.
#if !defined(__CUDACC__)
#error "rlxf/cuda/gemm/gemm.hpp launches on the GPU and is compiled by nvcc"
#endif
#include <type_traits>

#include "rlxf/cuda/gemm/configs.hpp"
#include "rlxf/cuda/gemm/params.hpp"
#include "rlxf/cuda/launch.hpp"

namespace rlxf::cuda {

namespace gemm_detail {
// Launches Kernel<trans_a, trans_b>, the runtime flags made compile-time.
template <template <bool, bool> class Kernel, class P>
void launch_transposed(bool trans_a, bool trans_b, const P& p, cudaStream_t stream) {
  auto go = [&]<class K>() { launch<K>(K::launch_config(p), p, stream); };
  if (!trans_a && !trans_b) go.template operator()<Kernel<false, false>>();
  else if (!trans_a) go.template operator()<Kernel<false, true>>();
  else if (!trans_b) go.template operator()<Kernel<true, false>>();
  else go.template operator()<Kernel<true, true>>();
}
}  // namespace gemm_detail

// C = epilogue(alpha op(A) op(B) + beta C) on `stream`; sm_count picks the tile size.
template <class T, class TOut>
void gemm(bool trans_a, bool trans_b, const GemmParams<T, TOut>& p, int sm_count, cudaStream_t stream = nullptr) {
  check_gemm(p, trans_a, trans_b);
  if (p.m == 0 || p.n == 0) return;
  const bool large = gemm_tiles::use_large_tiles(p.m, p.n, p.batch, sm_count);
  if constexpr (std::is_same_v<T, float>) {
    static_assert(std::is_same_v<TOut, float>, "f32 GEMM writes f32");
    using namespace gemm_detail;
    if (large) launch_transposed<SimtFamily<gemm_tiles::SimtLarge>::template kernel>(trans_a, trans_b, p, stream);
    else launch_transposed<SimtFamily<gemm_tiles::SimtSmall>::template kernel>(trans_a, trans_b, p, stream);
  } else {
    using namespace gemm_detail;
    if (large) launch_transposed<WmmaFamily<gemm_tiles::WmmaLarge, T, TOut>::template kernel>(trans_a, trans_b, p, stream);
    else launch_transposed<WmmaFamily<gemm_tiles::WmmaSmall, T, TOut>::template kernel>(trans_a, trans_b, p, stream);
  }
}

}  // namespace rlxf::cuda
