#pragma once
// The kernels rlxf ships, family by family (each family's list lives beside its kernels),
// and the dynamic shared memory each launches with.
#include "rlxf/cuda/gemm/configs.hpp"

namespace rlxf::cuda {

template <class F>
void for_each_shipped_kernel(F&& f) {
  for_each_kernel(shipped_gemm_kernels{}, f);
}

template <class Kernel>
long shipped_shared_bytes() {
  return Kernel::shared_bytes;
}

}  // namespace rlxf::cuda
