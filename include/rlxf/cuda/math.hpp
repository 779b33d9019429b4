#pragma once
// Float math for kernels, the same spelling on both sides: CUDA's single-precision
// functions on the GPU, the C++ library's on the host (the emulator).
#include <cmath>
#include <limits>

#include "rlxf/cuda/platform.hpp"

namespace rlxf::cuda::math {

RLXF_HOST_DEVICE float exp(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  return std::exp(x);
#endif
}

RLXF_HOST_DEVICE float exp2(float x) {
#if defined(__CUDA_ARCH__)
  return exp2f(x);
#else
  return std::exp2(x);
#endif
}

RLXF_HOST_DEVICE float log(float x) {
#if defined(__CUDA_ARCH__)
  return logf(x);
#else
  return std::log(x);
#endif
}

RLXF_HOST_DEVICE float tanh(float x) {
#if defined(__CUDA_ARCH__)
  return tanhf(x);
#else
  return std::tanh(x);
#endif
}

RLXF_HOST_DEVICE float erfc(float x) {
#if defined(__CUDA_ARCH__)
  return erfcf(x);
#else
  return std::erfc(x);
#endif
}

RLXF_HOST_DEVICE float sqrt(float x) {
#if defined(__CUDA_ARCH__)
  return sqrtf(x);
#else
  return std::sqrt(x);
#endif
}

RLXF_HOST_DEVICE float max(float a, float b) { return a > b ? a : b; }
RLXF_HOST_DEVICE float min(float a, float b) { return a < b ? a : b; }

// 1 / sqrt(x): the hardware reciprocal square root on the GPU (at most 2 ulp, rsqrtf), the
// correctly rounded quotient on the host.
RLXF_HOST_DEVICE float rsqrt(float x) {
#if defined(__CUDA_ARCH__)
  return rsqrtf(x);
#else
  return 1.0f / std::sqrt(x);
#endif
}

// A quiet NaN: what a kernel writes where the host would have thrown (e.g. a target index
// outside the vocabulary), so the error shows in the results instead of a stray memory read.
RLXF_HOST_DEVICE float quiet_nan() {
#if defined(__CUDA_ARCH__)
  return __int_as_float(0x7fffffff);
#else
  return std::numeric_limits<float>::quiet_NaN();
#endif
}

// +infinity (HUGE_VALF, a constant expression on both sides).
RLXF_HOST_DEVICE constexpr float infinity() { return HUGE_VALF; }

}  // namespace rlxf::cuda::math
