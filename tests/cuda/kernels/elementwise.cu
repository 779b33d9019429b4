// nvcc compile check of every elementwise / row-reduction kernel rlxf ships: each variant of
// shipped_elementwise_kernels is compiled (its __global__ entry, with the kernel's
// __launch_bounds__), and the host dispatch functions are instantiated with the GPU launcher. Compile with
//   nvcc -std=c++20 -I include -arch=sm_80 -Xptxas -v -c tests/cuda/kernels/elementwise.cu
// (and -arch=sm_90): ptxas must report 0 spill bytes for every kernel.
#include "rlxf/cuda/elementwise/elementwise.hpp"

namespace rlxf::cuda {

template void compile_kernels(shipped_elementwise_kernels);

// The host dispatch functions, with the GPU launcher.
template <class T>
void dispatch_all(cudaStream_t stream) {
  const StreamLauncher gpu{stream};
  layernorm_forward(LayerNormForwardParams<T>{}, gpu);
  layernorm_backward(LayerNormBackwardParams<T>{}, gpu);
  rmsnorm_forward(RmsNormForwardParams<T>{}, gpu);
  rmsnorm_backward(RmsNormBackwardParams<T>{}, gpu);
  gelu_forward(GeluForwardParams<T>{}, GeluForm::tanh, gpu);
  gelu_backward(GeluBackwardParams<T>{}, GeluForm::exact, gpu);
  swiglu_forward(SwiGluForwardParams<T>{}, gpu);
  swiglu_backward(SwiGluBackwardParams<T>{}, gpu);
  cross_entropy_forward(CrossEntropyForwardParams<T>{}, gpu);
  cross_entropy_backward(CrossEntropyBackwardParams<T>{}, gpu);
  rope(RopeParams<T>{}, gpu);
  gather(GatherParams<T>{}, gpu);
  scatter_add_rows(ScatterAddRowsParams<T>{}, gpu);
  permute_heads(PermuteHeadsParams<T>{}, gpu);
}
template void dispatch_all<float>(cudaStream_t);
template void dispatch_all<bf16>(cudaStream_t);
template void adamw_update(const AdamWParams&, StreamLauncher&&);
template void scale(const ScaleParams&, StreamLauncher&&);
template void sum_of_squares(const SumOfSquaresParams&, StreamLauncher&&);

}  // namespace rlxf::cuda
