#pragma once
// The kernels rlxf ships, family by family (each family's list lives beside its kernels),
// and the dynamic shared memory each launches with.
#include "rlxf/cuda/attention/configs.hpp"
#include "rlxf/cuda/elementwise/elementwise.hpp"
#include "rlxf/cuda/gemm/configs.hpp"

namespace rlxf::cuda {

template <class F>
void for_each_shipped_kernel(F&& f) {
  for_each_kernel(shipped_gemm_kernels{}, f);
  for_each_kernel(shipped_attention_kernels{}, f);
  for_each_kernel(shipped_elementwise_kernels{}, f);
}

// Dynamic shared memory per block: a kernel that uses it says how much in `shared_bytes`.
template <class Kernel>
long shipped_shared_bytes() {
  if constexpr (requires { Kernel::shared_bytes; }) return Kernel::shared_bytes;
  else return 0;
}

}  // namespace rlxf::cuda
