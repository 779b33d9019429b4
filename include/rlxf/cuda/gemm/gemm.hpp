#pragma once
// cuda::gemm: rlxf's own GEMM on the GPU (see params.hpp for what it computes, configs.hpp
// for the tiles, dispatch.hpp for the choice of kernel). f16 and bf16 inputs run on tensor
// cores (WMMA) with C in the input type or f32; f32 inputs on the SIMT kernel. nvcc only;
// the emulator runs the same kernels through the same dispatch.
#if !defined(__CUDACC__)
#error "rlxf/cuda/gemm/gemm.hpp launches on the GPU and is compiled by nvcc"
#endif
#include "rlxf/cuda/gemm/dispatch.hpp"
#include "rlxf/cuda/launch.hpp"

namespace rlxf::cuda {

// C = epilogue(alpha op(A) op(B) + beta C) on `stream`; sm_count picks the tile size.
template <class T, class TOut>
void gemm(bool trans_a, bool trans_b, const GemmParams<T, TOut>& p, int sm_count, cudaStream_t stream = nullptr) {
  dispatch_gemm(StreamLauncher{stream}, trans_a, trans_b, p, sm_count);
}

}  // namespace rlxf::cuda
