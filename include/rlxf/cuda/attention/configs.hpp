#pragma once
// The attention tile configurations rlxf ships, and the one dispatch from a runtime head
// dim to them. Shared memory per block (bytes, from traits.hpp; the same for f16 and bf16):
//   forward  d=64 : 64 x 64, 4 warps:  49,408 (48.25 KB) -> 3 CTAs (12 warps) per sm_80 SM
//   forward  d=128: 64 x 64, 4 warps:  73,984 (72.25 KB) -> 2 CTAs (8 warps) per sm_80 SM
//   backward d=64 : 64 x 64, 8 warps:  99,072 (96.75 KB) -> 1 CTA (8 warps) per SM
//   backward d=128: 64 x 64, 8 warps: 131,840 (128.75 KB) -> 1 CTA (8 warps) per SM
// (sm_80: 164 KB per SM, 163 KB per block. sm_90, 228 KB per SM: shared memory allows
// 4 / 3 / 2 / 1 CTAs, registers (150 a thread x 256) hold the d=64 backward to 1.)
// Registers and spills per kernel, from ptxas: tests/cuda/kernels/attention.cu (0 spills).
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/attention/backward.hpp"
#include "rlxf/cuda/attention/forward.hpp"
#include "rlxf/cuda/attention/traits.hpp"
#include "rlxf/cuda/kernel_list.hpp"

namespace rlxf::cuda::attention {

// Why these tiles (sm_80 first):
// - Forward, Br = 64 query rows over 4 warps (one 16-row strip a warp, so a warp's O is
//   d / 16 accumulators: 32 registers at d=64, 64 at d=128) and Bc = 64 keys (S: 4
//   accumulators). In this WMMA + shared-memory design S goes through shared memory as f32,
//   so its Br x Bc x 4 bytes, not registers, bound the tile: 128 x 128 (FlashAttention-2's
//   d=64 forward tile) would need 64 KB for S alone and leave one CTA per SM. 64 x 64 keeps
//   d=64 at 3 CTAs per SM and d=128 at 2 (K/V reuse over 64 query rows either way); P
//   written over S saves another 9 KB, which is what lets d=128 fit 2 CTAs.
// - Backward, Br = Bc = 64 over 8 warps, as FlashAttention-2's d=128 backward (64 x 64 or
//   64 x 128, 8 warps): dK and dV stay in registers (d=128: 4 + 4 accumulators a warp, 64
//   registers), and S, dP, P, dS (f32 and T copies) fit next to K, V, Q, dO at d=128 in
//   129 KB. Bc = 128 at d=64 would need exactly the 163 KB limit; 8 warps rather than 4
//   give the one resident CTA twice the warps to hide latency.
template <class T, int HeadDim>
struct Shipped;

template <class T>
struct Shipped<T, 64> {
  using Forward = ForwardTraits<T, 64, 64, 64, 4>;
  using Backward = BackwardTraits<T, 64, 64, 64, 8>;
};

template <class T>
struct Shipped<T, 128> {
  using Forward = ForwardTraits<T, 128, 64, 64, 4>;
  using Backward = BackwardTraits<T, 128, 64, 64, 8>;
};

// The head dims with shipped kernels.
inline constexpr int shipped_head_dims[] = {64, 128};

// Calls f.template operator()<Shipped<T, head_dim>>() for a runtime head dim.
template <class T, class F>
decltype(auto) dispatch_head_dim(int head_dim, F&& f) {
  switch (head_dim) {
    case 64: return f.template operator()<Shipped<T, 64>>();
    case 128: return f.template operator()<Shipped<T, 128>>();
    default: fail("attention: no CUDA kernel for head_dim ", head_dim, " (shipped: 64, 128)");
  }
}

namespace configs_detail {
template <class Config>
using kernels_of = KernelList<ForwardKernel<typename Config::Forward>, PreprocessKernel<typename Config::Backward>,
                              BackwardKernel<typename Config::Backward>, ConvertDqKernel<typename Config::Backward>>;
}  // namespace configs_detail

// Every attention kernel forward() and backward() can launch: f16 and bf16, head dims 64
// and 128, forward, and backward's preprocess, main and dq-conversion kernels.
using shipped_kernels = concat_kernel_lists<
    configs_detail::kernels_of<Shipped<f16, 64>>, configs_detail::kernels_of<Shipped<f16, 128>>,
    configs_detail::kernels_of<Shipped<bf16, 64>>, configs_detail::kernels_of<Shipped<bf16, 128>>>;

}  // namespace rlxf::cuda::attention

namespace rlxf::cuda {
using shipped_attention_kernels = attention::shipped_kernels;
}  // namespace rlxf::cuda
