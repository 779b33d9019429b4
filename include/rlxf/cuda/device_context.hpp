#pragma once
// DeviceContext: the execution context of a kernel on the GPU, member for member the
// emulator's Context (emulate/context.hpp), each member an inline wrapper over a CUDA
// builtin, so kernels compile to what hand-written CUDA would. nvcc only.
#if !defined(__CUDACC__)
#error "rlxf/cuda/device_context.hpp is compiled by nvcc; on the host, kernels run under rlxf/cuda/emulate/"
#endif
// cuda_bf16.h before mma.h: WMMA's bf16 fragments exist only when bf16 is already declared.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <mma.h>

#include <cstdint>
#include <type_traits>

#include "rlxf/cuda/numeric.hpp"
#include "rlxf/cuda/platform.hpp"
#include "rlxf/cuda/wmma_tags.hpp"

namespace rlxf::cuda {

namespace device_detail {
template <class T> struct nv { using type = T; };
template <> struct nv<f16> { using type = __half; };
template <> struct nv<bf16> { using type = __nv_bfloat16; };
template <> struct nv<wmma::matrix_a> { using type = nvcuda::wmma::matrix_a; };
template <> struct nv<wmma::matrix_b> { using type = nvcuda::wmma::matrix_b; };
template <> struct nv<wmma::accumulator> { using type = nvcuda::wmma::accumulator; };
template <> struct nv<wmma::row_major> { using type = nvcuda::wmma::row_major; };
template <> struct nv<wmma::col_major> { using type = nvcuda::wmma::col_major; };
template <class T> using nv_t = typename nv<T>::type;

// rlxf::f16 / bf16 pointers as the __half / __nv_bfloat16 pointers WMMA takes.
template <class T> RLXF_DEVICE auto* as_nv(T* p) { return reinterpret_cast<nv_t<std::remove_const_t<T>>*>(p); }
template <class T> RLXF_DEVICE const auto* as_nv(const T* p) {
  return reinterpret_cast<const nv_t<T>*>(p);
}
RLXF_DEVICE nvcuda::wmma::layout_t nv_layout(wmma::Layout l) {
  return l == wmma::Layout::row_major ? nvcuda::wmma::mem_row_major : nvcuda::wmma::mem_col_major;
}
}  // namespace device_detail

// A typed view of dynamic shared memory: a pointer, with the emulator's spelling.
template <class T>
struct SharedArray {
  T* data;
  long count;
  RLXF_DEVICE T& operator[](long i) const { return data[i]; }
  RLXF_DEVICE T* ptr(long i = 0) const { return data + i; }
  RLXF_DEVICE long size() const { return count; }
  template <int N> RLXF_DEVICE void load(Vec<T, N>& v, long i) const {
    v = *reinterpret_cast<const Vec<T, N>*>(data + i);
  }
  template <int N> RLXF_DEVICE void store(long i, const Vec<T, N>& v) const {
    *reinterpret_cast<Vec<T, N>*>(data + i) = v;
  }
};

struct DeviceContext {
  template <class Use, int M, int N, int K, class T, class Layout = void>
  using fragment = nvcuda::wmma::fragment<device_detail::nv_t<Use>, M, N, K, device_detail::nv_t<T>,
                                          std::conditional_t<std::is_void_v<Layout>, void, device_detail::nv_t<Layout>>>;

  // ---- indices ----
  RLXF_DEVICE Dim3 thread_idx() const { return {int(threadIdx.x), int(threadIdx.y), int(threadIdx.z)}; }
  RLXF_DEVICE Dim3 block_idx() const { return {int(blockIdx.x), int(blockIdx.y), int(blockIdx.z)}; }
  RLXF_DEVICE Dim3 block_dim() const { return {int(blockDim.x), int(blockDim.y), int(blockDim.z)}; }
  RLXF_DEVICE Dim3 grid_dim() const { return {int(gridDim.x), int(gridDim.y), int(gridDim.z)}; }
  RLXF_DEVICE int thread_rank() const {
    return int(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z));
  }
  RLXF_DEVICE int lane() const { return thread_rank() % warp_size; }
  RLXF_DEVICE int warp() const { return thread_rank() / warp_size; }

  // ---- synchronisation ----
  RLXF_DEVICE void sync() const { __syncthreads(); }
  RLXF_DEVICE void syncwarp() const { __syncwarp(); }

  // ---- shared memory ----
  template <class T>
  RLXF_DEVICE SharedArray<T> shared(long byte_offset, long count, const char* = nullptr) const {
    extern __shared__ __align__(128) unsigned char rlxf_dynamic_smem[];
    return {reinterpret_cast<T*>(rlxf_dynamic_smem + byte_offset), count};
  }

  // ---- global memory ----
  template <class T, int N> RLXF_DEVICE void load(Vec<T, N>& v, const T* p) const {
    v = *reinterpret_cast<const Vec<T, N>*>(p);
  }
  template <class T, int N> RLXF_DEVICE void store(T* p, const Vec<T, N>& v) const {
    *reinterpret_cast<Vec<T, N>*>(p) = v;
  }
  RLXF_DEVICE float atomic_add(float* p, float v) const { return atomicAdd(p, v); }

  // ---- warp operations ----
  template <class T> RLXF_DEVICE T shfl(T v, int src_lane) const { return __shfl_sync(full_warp_mask, v, src_lane); }
  template <class T> RLXF_DEVICE T shfl_xor(T v, int lane_mask) const { return __shfl_xor_sync(full_warp_mask, v, lane_mask); }
  template <class T> RLXF_DEVICE T shfl_down(T v, int delta) const { return __shfl_down_sync(full_warp_mask, v, delta); }
  RLXF_DEVICE std::uint32_t ballot(bool pred) const { return __ballot_sync(full_warp_mask, pred); }
  RLXF_DEVICE bool any(bool pred) const { return __any_sync(full_warp_mask, pred); }
  RLXF_DEVICE bool all(bool pred) const { return __all_sync(full_warp_mask, pred); }

  // ---- WMMA ----
  template <class F, class V> RLXF_DEVICE void fill_fragment(F& f, V v) const { nvcuda::wmma::fill_fragment(f, v); }
  template <class F, class T> RLXF_DEVICE void load_matrix_sync(F& f, const T* p, long ldm) const {
    nvcuda::wmma::load_matrix_sync(f, device_detail::as_nv(p), unsigned(ldm));
  }
  template <class F, class T> RLXF_DEVICE void load_matrix_sync(F& f, const T* p, long ldm, wmma::Layout l) const {
    nvcuda::wmma::load_matrix_sync(f, device_detail::as_nv(p), unsigned(ldm), device_detail::nv_layout(l));
  }
  template <class T, class F> RLXF_DEVICE void store_matrix_sync(T* p, const F& f, long ldm, wmma::Layout l) const {
    nvcuda::wmma::store_matrix_sync(device_detail::as_nv(p), f, unsigned(ldm), device_detail::nv_layout(l));
  }
  template <class D, class A, class B, class C>
  RLXF_DEVICE void mma_sync(D& d, const A& a, const B& b, const C& c) const { nvcuda::wmma::mma_sync(d, a, b, c); }
};

}  // namespace rlxf::cuda
