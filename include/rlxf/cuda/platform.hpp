#pragma once
// The one switch between the two ways rlxf's CUDA kernels are compiled:
// - by nvcc for the GPU (__CUDACC__), where kernels run against cuda::DeviceContext, thin
//   inline wrappers over CUDA's builtins (device_context.hpp);
// - by the host compiler, where cuda/emulate/ runs each block's threads as CPU fibers so the
//   kernels' logic is tested on machines without a GPU.
// RLXF_DEVICE marks functions kernels call: __device__ __forceinline__ under nvcc, plain
// inline on the host. RLXF_HOST_DEVICE marks functions both sides call.
#include <cstdint>

#if defined(__CUDACC__)
#define RLXF_DEVICE __device__ __forceinline__
#define RLXF_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define RLXF_DEVICE inline
#define RLXF_HOST_DEVICE inline
#endif

// Unrolls the loop that follows under nvcc (register arrays indexed by the loop variable
// stay in registers only when unrolled); nothing on the host.
#if defined(__CUDACC__)
#define RLXF_UNROLL _Pragma("unroll")
#else
#define RLXF_UNROLL
#endif

namespace rlxf::cuda {

// A grid or block extent, or a thread or block index (CUDA's dim3 with signed members, so
// index arithmetic in kernels needs no casts).
struct Dim3 {
  int x = 1, y = 1, z = 1;
  RLXF_HOST_DEVICE constexpr long long count() const {
    return static_cast<long long>(x) * y * z;
  }
};

// How a kernel is launched: grid and block extents and the dynamic shared memory (bytes).
struct LaunchConfig {
  Dim3 grid;
  Dim3 block;
  int shared_bytes = 0;
};

inline constexpr int warp_size = 32;
inline constexpr std::uint32_t full_warp_mask = 0xffffffffu;

// Names a kernel type as a value. Host dispatch functions (dispatch_gemm, layernorm_forward,
// attention forward, ...) choose a kernel and its LaunchConfig from the problem and call a
// launcher with them: launcher(KernelTag<Kernel>{}, config, params). StreamLauncher
// (launch.hpp) launches on the GPU, emulate::Launcher under the emulator; a generic lambda
//   [&](auto tag, const LaunchConfig& c, const auto& p) { ... typename decltype(tag)::type ... }
// works too.
template <class Kernel>
struct KernelTag {
  using type = Kernel;
};

// ceil(a / b) for positive b: grid extents from problem sizes.
RLXF_HOST_DEVICE constexpr int ceil_div(int a, int b) { return (a + b - 1) / b; }

}  // namespace rlxf::cuda
