#pragma once
// Fused scaled-dot-product attention on the GPU, FlashAttention-2 style (Dao 2023): forward
// and backward visit keys in tiles with an online softmax, so no q_len x kv_len matrix is
// stored in global memory. What is computed and the tensor layouts: params.hpp (the same as
// cpu::attention_forward / attention_backward). f16 and bf16 inputs, f32 accumulation,
// head dims 64 and 128, causal (bottom-right aligned) or not, key padding mask, ragged
// q_len / kv_len, grouped-query heads, a KV cache's kv_capacity.
//
// Design: "WMMA + shared memory". Both products of each step run on tensor cores through
// WMMA (m16n16k16 fragments, f32 accumulators), but WMMA fragments' element layout is
// unspecified, so everything that depends on which row an element is in (row max and sum,
// masks, P = exp2(S - m)) works on S stored to shared memory with store_matrix_sync; P is
// written back to shared memory in the input type and reloaded as a matrix_a fragment.
// Row-wise factors on the O accumulators (the online-softmax rescale, the final 1 / l) use
// a 16 x 16 tile holding the factor of each row, loaded as an accumulator fragment of the
// same type and multiplied elementwise: fragments of one type share their layout, whatever
// it is. The faster FlashAttention-2 design, mma.sync with its documented register layout
// so the softmax runs on register-resident S (no S/P round trip through shared memory),
// ldmatrix + swizzled shared memory, cp.async double buffering of K/V, is future work; so
// are head dims other than 64 and 128. Tiles and shared memory: traits.hpp, configs.hpp.
//
// Forward (forward.hpp): one CTA per (64 query rows, q head, batch), 4 warps of 16 rows;
// S = Q K^T scale log2(e) (exp2 with log2 e folded into the scale), running max m, sum l
// and O in f32, O rescaled by exp2(m - m') per key tile; saves O (input type) and
// L = logsumexp (f32, natural log, (batch, q_heads, q_len)). A row with no visible key gets
// O = 0 and L = +inf, as the CPU reference, so backward recomputes P = 0 for it. Under the
// causal mask only tiles crossing the diagonal are masked element-wise and tiles past it
// are skipped.
// Backward (backward.hpp): preprocess D = rowsum(dO * O) and zero the dQ accumulator; one
// CTA per (64 keys, kv head, batch) iterates over the q heads of its group and their query
// tiles (from the first the causal mask lets see its keys), so dK, dV of a kv head sum
// over its q heads in a fixed order, in registers; P = exp2(S scale log2 e - L log2 e);
// dV += P^T dO; dP = dO V^T; dS = P (dP - D); dK += dS^T Q; dQ += dS K into an f32
// accumulator in global memory: f32 atomicAdd by default (run-to-run variation in the last
// bits of dq), or with `deterministic` one slice per key tile summed in a fixed order by the
// conversion kernel, which scales dq by `scale` and rounds it to the input type.
//
// Host side: launch configurations from the shape, and forward() / backward(), which
// dispatch on the head dim and hand each kernel to a launcher (KernelTag in platform.hpp):
// emulate::Launcher in the CPU tests, StreamLauncher on the GPU.
#include <cstddef>
#include <cstdint>

#include "rlxf/core/error.hpp"
#include "rlxf/cuda/attention/backward.hpp"
#include "rlxf/cuda/attention/configs.hpp"
#include "rlxf/cuda/attention/forward.hpp"
#include "rlxf/cuda/attention/params.hpp"
#include "rlxf/cuda/attention/traits.hpp"
#include "rlxf/cuda/platform.hpp"

#if defined(__CUDACC__)
#include "rlxf/cuda/launch.hpp"  // StreamLauncher
#endif

namespace rlxf::cuda::attention {

// Forward: a CTA per (query tile, q head, batch).
template <class Traits>
LaunchConfig forward_launch_config(const Dims& dm) {
  return {Dim3{ceil_div(dm.q_len, Traits::br), dm.q_heads, dm.batch}, Dim3{Traits::threads, 1, 1}, ForwardKernel<Traits>::shared_bytes};
}

// Backward main kernel: a CTA per (key tile, kv head, batch).
template <class Traits>
LaunchConfig backward_launch_config(const Dims& dm) {
  return {Dim3{ceil_div(dm.kv_len, Traits::bc), dm.kv_heads, dm.batch}, Dim3{Traits::threads, 1, 1}, BackwardKernel<Traits>::shared_bytes};
}

// Preprocess and dq conversion: a warp per row of (batch, q_heads, q_len).
template <class Traits>
LaunchConfig row_launch_config(const Dims& dm) {
  const long long rows = static_cast<long long>(dm.batch) * dm.q_heads * dm.q_len;
  const long long blocks = (rows + Traits::row_warps - 1) / Traits::row_warps;
  RLXF_REQUIRE(blocks <= 0x7fffffffLL, "attention: ", rows, " query rows exceed a grid");
  return {Dim3{static_cast<int>(blocks), 1, 1}, Dim3{Traits::row_threads, 1, 1}, 0};
}

// f32 elements of backward's workspace.
struct Workspace {
  std::size_t delta;     // BackwardParams::delta
  std::size_t dq_accum;  // BackwardParams::dq_accum
};

template <class T>
Workspace backward_workspace(const Dims& dm, bool deterministic) {
  return dispatch_head_dim<T>(dm.head_dim, [&]<class Config>() {
    const std::size_t rows = static_cast<std::size_t>(dm.batch) * dm.q_heads * dm.q_len;
    const auto splits = static_cast<std::size_t>(dq_splits<typename Config::Backward>(dm, deterministic));
    return Workspace{rows, splits * rows * static_cast<std::size_t>(dm.head_dim)};
  });
}

namespace detail {
inline void require_aligned(const void* p, const char* name) {
  RLXF_REQUIRE(reinterpret_cast<std::uintptr_t>(p) % 16 == 0, "attention: ", name,
               " must be 16-byte aligned (128-bit accesses)");
}
}  // namespace detail

// o, lse = attention(q, k, v), each kernel handed to `launch` (see KernelTag).
template <class T, class Launch>
void forward(const ForwardParams<T>& p, Launch&& launch) {
  const Dims& dm = p.dims;
  if (dm.batch == 0 || dm.q_len == 0) return;
  RLXF_REQUIRE(p.q && p.o && p.lse && ((p.k && p.v) || dm.kv_len == 0), "attention: null tensor pointer");
  detail::require_aligned(p.q, "q");
  detail::require_aligned(p.k, "k");
  detail::require_aligned(p.v, "v");
  detail::require_aligned(p.o, "o");
  dispatch_head_dim<T>(dm.head_dim, [&]<class Config>() {
    using Traits = typename Config::Forward;
    launch(KernelTag<ForwardKernel<Traits>>{}, forward_launch_config<Traits>(dm), p);
  });
}

// dq, dk, dv (written, not accumulated) from the forward's o and lse and dout.
template <class T, class Launch>
void backward(const BackwardParams<T>& p, Launch&& launch) {
  const Dims& dm = p.dims;
  if (dm.batch == 0 || dm.q_len == 0) return;
  RLXF_REQUIRE(p.q && p.o && p.dout && p.lse && p.delta && p.dq_accum && p.dq &&
                   ((p.k && p.v && p.dk && p.dv) || dm.kv_len == 0),
               "attention: null tensor pointer");
  detail::require_aligned(p.q, "q");
  detail::require_aligned(p.k, "k");
  detail::require_aligned(p.v, "v");
  detail::require_aligned(p.o, "o");
  detail::require_aligned(p.dout, "dout");
  detail::require_aligned(p.dq_accum, "dq_accum");
  detail::require_aligned(p.dq, "dq");
  detail::require_aligned(p.dk, "dk");
  detail::require_aligned(p.dv, "dv");
  dispatch_head_dim<T>(dm.head_dim, [&]<class Config>() {
    using Traits = typename Config::Backward;
    launch(KernelTag<PreprocessKernel<Traits>>{}, row_launch_config<Traits>(dm), p);
    if (dm.kv_len > 0) launch(KernelTag<BackwardKernel<Traits>>{}, backward_launch_config<Traits>(dm), p);
    launch(KernelTag<ConvertDqKernel<Traits>>{}, row_launch_config<Traits>(dm), p);
  });
}


}  // namespace rlxf::cuda::attention
