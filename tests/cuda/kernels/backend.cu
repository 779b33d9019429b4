// nvcc compile check of cuda::Backend<cuda::Gpu> (include/rlxf/cuda/backend.hpp, gpu.hpp):
// every member instantiated with the GPU device and its StreamLauncher, the host code that
// only nvcc sees (g++ TUs cannot call the ops: see gpu.hpp), and the models, AdamW and gradient
// clipping over it (at the end). It launches only kernels that
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

// The models, the optimizer and the algorithms over it: every layer's forward and backward,
// the decoder's KV-cache path and generation, the encoder's pooling, AdamW on f32 master
// weights, gradient clipping, PPO and DPO, as the emulated backend runs them in
// tests/test_cuda_model_parity.cpp and tests/test_cuda_algo_parity.cpp.
#include "rlxf/algo/dpo.hpp"
#include "rlxf/algo/ppo.hpp"
#include "rlxf/model/decoder.hpp"
#include "rlxf/model/encoder.hpp"
#include "rlxf/model/logprobs.hpp"
#include "rlxf/model/policy.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/clip.hpp"

namespace rlxf_backend_check {
using GpuBackend = rlxf::cuda::Backend<rlxf::cuda::Gpu>;
using GpuParams = rlxf::nn::Params<GpuBackend>;
}  // namespace rlxf_backend_check

template class rlxf::model::BasicDecoder<rlxf_backend_check::GpuBackend>;
template class rlxf::model::BasicEncoder<rlxf_backend_check::GpuBackend>;
template class rlxf::model::BasicPolicy<rlxf_backend_check::GpuBackend>;
template class rlxf::model::BasicTextPolicy<rlxf::model::BasicPolicy<rlxf_backend_check::GpuBackend>>;
template class rlxf::algo::BasicPpo<rlxf::model::BasicPolicy<rlxf_backend_check::GpuBackend>>;
template class rlxf::algo::BasicDpo<rlxf::model::BasicPolicy<rlxf_backend_check::GpuBackend>>;
template class rlxf::optim::BasicAdamW<rlxf::nn::DeviceParameter<rlxf_backend_check::GpuBackend>>;
template double rlxf::optim::clip_grad_norm(const rlxf_backend_check::GpuParams&, double);
template rlxf::Tensor<float, 2> rlxf::model::token_logprobs<rlxf_backend_check::GpuBackend>(
    const rlxf::nn::Activation<rlxf_backend_check::GpuBackend>&, const rlxf::nn::Tokens&,
    rlxf::model::LogprobCache<rlxf_backend_check::GpuBackend>&, double,
    rlxf::nn::BackendRef<rlxf_backend_check::GpuBackend>);
template void rlxf::model::token_logprobs_backward<rlxf_backend_check::GpuBackend>(
    const rlxf::nn::Activation<rlxf_backend_check::GpuBackend>&, const rlxf::nn::Tokens&,
    const rlxf::model::LogprobCache<rlxf_backend_check::GpuBackend>&, const rlxf::Tensor<float, 2>&,
    rlxf::nn::Activation<rlxf_backend_check::GpuBackend>&, rlxf::nn::BackendRef<rlxf_backend_check::GpuBackend>);
