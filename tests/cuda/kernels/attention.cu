// Compiles every shipped attention kernel (forward, backward preprocess / main / dq
// conversion; d = 64, 128; f16, bf16) for the architectures CI builds (sm_80, sm_90), so
// ptxas reports their registers, shared memory and spills:
//   nvcc -std=c++20 -I include -arch=sm_80 -Xptxas -v -c tests/cuda/kernels/attention.cu -o /tmp/attention.o
// nvcc 13.0, registers per thread (f16 / bf16), 0 bytes of spill stores and loads for every
// kernel on both architectures; dynamic shared memory from traits.hpp (ptxas reports none):
//   kernel (threads)          smem      sm_80      sm_90
//   Forward d=64   (128)     49,408   127 / 127  127 / 128
//   Forward d=128  (128)     73,984   154 / 159  154 / 168
//   Preprocess     (128)          0    30 / 30    30 / 30
//   Backward d=64  (256)     99,072   153 / 152  152 / 150
//   Backward d=128 (256)    131,840   188 / 187  190 / 188
//   ConvertDq d=64 (128)          0    46 / 46    46 / 46
//   ConvertDq d=128 (128)         0    79 / 79    79 / 79
#include "rlxf/cuda/attention/attention.hpp"

namespace rlxf::cuda::attention {

// Through the public entry points (dispatching every head dim) ...
template void forward<f16, StreamLauncher>(const ForwardParams<f16>&, StreamLauncher&&);
template void forward<bf16, StreamLauncher>(const ForwardParams<bf16>&, StreamLauncher&&);
template void backward<f16, StreamLauncher>(const BackwardParams<f16>&, StreamLauncher&&);
template void backward<bf16, StreamLauncher>(const BackwardParams<bf16>&, StreamLauncher&&);

}  // namespace rlxf::cuda::attention

// ... and each kernel by name.
#define RLXF_ATTENTION_KERNELS(T, D)                                                                       \
  template __global__ void rlxf::cuda::kernel_entry<                                                       \
      rlxf::cuda::attention::ForwardKernel<rlxf::cuda::attention::Shipped<T, D>::Forward>>(                \
      rlxf::cuda::attention::ForwardKernel<rlxf::cuda::attention::Shipped<T, D>::Forward>::Params);        \
  template __global__ void rlxf::cuda::kernel_entry<                                                       \
      rlxf::cuda::attention::PreprocessKernel<rlxf::cuda::attention::Shipped<T, D>::Backward>>(            \
      rlxf::cuda::attention::PreprocessKernel<rlxf::cuda::attention::Shipped<T, D>::Backward>::Params);    \
  template __global__ void rlxf::cuda::kernel_entry<                                                       \
      rlxf::cuda::attention::BackwardKernel<rlxf::cuda::attention::Shipped<T, D>::Backward>>(              \
      rlxf::cuda::attention::BackwardKernel<rlxf::cuda::attention::Shipped<T, D>::Backward>::Params);      \
  template __global__ void rlxf::cuda::kernel_entry<                                                       \
      rlxf::cuda::attention::ConvertDqKernel<rlxf::cuda::attention::Shipped<T, D>::Backward>>(             \
      rlxf::cuda::attention::ConvertDqKernel<rlxf::cuda::attention::Shipped<T, D>::Backward>::Params);

RLXF_ATTENTION_KERNELS(rlxf::f16, 64)
RLXF_ATTENTION_KERNELS(rlxf::f16, 128)
RLXF_ATTENTION_KERNELS(rlxf::bf16, 64)
RLXF_ATTENTION_KERNELS(rlxf::bf16, 128)
