#pragma once
// Element types of the CUDA kernels and their conversions, the same on both sides: kernels
// store rlxf::f16 / rlxf::bf16 (2-byte, layout-compatible with __half / __nv_bfloat16) and
// compute in float. On the GPU conversions use the hardware intrinsics; on the host (the
// emulator) rlxf's own round-to-nearest-even conversions, which agree bit for bit.
#include "rlxf/core/dtype.hpp"
#include "rlxf/cuda/platform.hpp"

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace rlxf::cuda {

RLXF_HOST_DEVICE float to_float(float x) { return x; }

RLXF_HOST_DEVICE float to_float(f16 x) {
#if defined(__CUDA_ARCH__)
  return __half2float(__ushort_as_half(x.bits));
#else
  return x.to_float();
#endif
}

RLXF_HOST_DEVICE float to_float(bf16 x) {
#if defined(__CUDA_ARCH__)
  return __bfloat162float(__ushort_as_bfloat16(x.bits));
#else
  return x.to_float();
#endif
}

// Rounds a float to T (nearest, ties to even).
template <class T> RLXF_HOST_DEVICE T from_float(float x);

template <> RLXF_HOST_DEVICE float from_float<float>(float x) { return x; }

template <> RLXF_HOST_DEVICE f16 from_float<f16>(float x) {
#if defined(__CUDA_ARCH__)
  return f16{__half_as_ushort(__float2half_rn(x))};
#else
  return f16::from_float(x);
#endif
}

template <> RLXF_HOST_DEVICE bf16 from_float<bf16>(float x) {
#if defined(__CUDA_ARCH__)
  return bf16{__bfloat16_as_ushort(__float2bfloat16_rn(x))};
#else
  return bf16::from_float(x);
#endif
}

// N consecutive elements moved as one vector access (16 bytes for the widest, 128-bit
// loads). The address must be aligned to the vector's size, as the GPU requires.
template <class T, int N>
struct alignas(sizeof(T) * N) Vec {
  static_assert(N > 0 && (N & (N - 1)) == 0 && sizeof(T) * N <= 16,
                "a vector access moves 2, 4, 8 or 16 bytes");
  T v[N];
  RLXF_HOST_DEVICE T& operator[](int i) { return v[i]; }
  RLXF_HOST_DEVICE const T& operator[](int i) const { return v[i]; }
};

// Elements of T in a 128-bit vector.
template <class T> inline constexpr int vec128 = static_cast<int>(16 / sizeof(T));

}  // namespace rlxf::cuda
