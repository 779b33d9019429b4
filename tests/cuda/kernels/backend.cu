// nvcc compile check of cuda::Backend<cuda::Gpu> (include/rlxf/cuda/backend.hpp, gpu.hpp):
// every member instantiated with the GPU device and its StreamLauncher, the host code that
// only nvcc sees (g++ TUs cannot call the ops: see gpu.hpp). It launches only kernels that
// gemm.cu, attention.cu and elementwise.cu already compile (bf16 GEMMs, bf16 attention for
// head dims 64 and 128, bf16 layer norm, GELU and Add), so it adds no kernel to the ptxas
// report, only their second compilation in this object (about 70 s per architecture):
//   nvcc -std=c++20 -I include -arch=sm_80 -Xptxas -v -c tests/cuda/kernels/backend.cu -o /tmp/backend.o
#include "rlxf/cuda/gpu.hpp"

template class rlxf::cuda::Backend<rlxf::cuda::Gpu>;
