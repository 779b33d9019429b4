#pragma once
// cuda::launch: runs a kernel struct (see emulate/launch.hpp for its shape) on the GPU.
// The entry point carries the kernel's __launch_bounds__, so ptxas budgets registers for
// max_threads threads and min_blocks resident blocks per SM. nvcc only.
#if !defined(__CUDACC__)
#error "rlxf/cuda/launch.hpp is compiled by nvcc; on the host use rlxf/cuda/emulate/launch.hpp"
#endif
#include <cuda_runtime.h>

#include "rlxf/cuda/device_context.hpp"
#include "rlxf/cuda/kernel_list.hpp"
#include "rlxf/cuda/platform.hpp"
#include "rlxf/cuda/runtime.hpp"

namespace rlxf::cuda {

template <class Kernel>
__global__ void __launch_bounds__(Kernel::max_threads, Kernel::min_blocks)
    kernel_entry(const typename Kernel::Params params) {
  DeviceContext ctx;
  Kernel::run(ctx, params);
}

template <class Kernel>
void launch(const LaunchConfig& config, const typename Kernel::Params& params, cudaStream_t stream = nullptr) {
  if (config.shared_bytes > 48 * 1024) {  // above 48 KB a kernel must opt in
    check(cudaFuncSetAttribute(kernel_entry<Kernel>, cudaFuncAttributeMaxDynamicSharedMemorySize, config.shared_bytes),
          "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
  }
  const dim3 grid(unsigned(config.grid.x), unsigned(config.grid.y), unsigned(config.grid.z));
  const dim3 block(unsigned(config.block.x), unsigned(config.block.y), unsigned(config.block.z));
  kernel_entry<Kernel><<<grid, block, size_t(config.shared_bytes), stream>>>(params);
  check(cudaGetLastError(), "a kernel launch");
}

// Compiles every kernel of a list: `template void compile_kernels(list);` in a translation
// unit that ships kernels (odr-using each entry point instantiates it).
template <class... Kernels>
void compile_kernels(KernelList<Kernels...>) {
  ((void)&kernel_entry<Kernels>, ...);
}

// Launches on a CUDA stream: the launcher host dispatch functions take on the GPU.
struct StreamLauncher {
  cudaStream_t stream = nullptr;
  template <class Kernel>
  void operator()(KernelTag<Kernel>, const LaunchConfig& config, const typename Kernel::Params& params) const {
    launch<Kernel>(config, params, stream);
  }
};

}  // namespace rlxf::cuda
