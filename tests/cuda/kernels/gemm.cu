// Compiles every shipped GEMM kernel for the architectures CI builds (sm_80, sm_90), so
// ptxas reports their registers, shared memory and spills (tests/cuda/ptxas_report).
#include "rlxf/cuda/gemm/gemm.hpp"

namespace rlxf::cuda {
template void gemm<f16, f16>(bool, bool, const GemmParams<f16, f16>&, int, cudaStream_t);
template void gemm<f16, float>(bool, bool, const GemmParams<f16, float>&, int, cudaStream_t);
template void gemm<bf16, bf16>(bool, bool, const GemmParams<bf16, bf16>&, int, cudaStream_t);
template void gemm<bf16, float>(bool, bool, const GemmParams<bf16, float>&, int, cudaStream_t);
template void gemm<float, float>(bool, bool, const GemmParams<float, float>&, int, cudaStream_t);
}  // namespace rlxf::cuda
