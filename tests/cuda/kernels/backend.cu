// nvcc compile check of cuda::Backend<cuda::Gpu> (include/rlxf/cuda/backend.hpp, gpu.hpp):
// every member instantiated with the GPU device and its StreamLauncher, the host code that
// only nvcc sees (g++ TUs cannot call the ops: see gpu.hpp). It launches only kernels that
// gemm.cu, attention.cu and elementwise.cu already compile (bf16 GEMMs, bf16 attention for
// head dims 64 and 128, the bf16 row and elementwise kernels), so it adds no kernel to the ptxas
// report, only their second compilation in this object (about 70 s per architecture):
//   nvcc -std=c++20 -I include -arch=sm_80 -Xptxas -v -c tests/cuda/kernels/backend.cu -o /tmp/backend.o
#include "rlxf/cuda/gpu.hpp"

template class rlxf::cuda::Backend<rlxf::cuda::Gpu>;

// The member templates the models will call: casts between the master and working weights,
// and the typed transfers.
template void rlxf::cuda::Backend<rlxf::cuda::Gpu>::cast<float, rlxf::bf16>(const float*, rlxf::bf16*, std::size_t);
template void rlxf::cuda::Backend<rlxf::cuda::Gpu>::cast<rlxf::bf16, float>(const rlxf::bf16*, float*, std::size_t);
template void rlxf::cuda::Backend<rlxf::cuda::Gpu>::copy_to_device<std::int32_t>(std::span<const std::int32_t>,
                                                                                 std::int32_t*);
template void rlxf::cuda::Backend<rlxf::cuda::Gpu>::copy_to_host<float>(const float*, std::span<float>);
