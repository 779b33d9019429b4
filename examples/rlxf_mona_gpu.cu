// rlxf_mona --device cuda: the main job's models on cuda::Backend<cuda::Gpu> (bf16 weights and
// activations, f32 master weights, gradients and optimizer state). The backend's ops launch
// CUDA kernels, so this translation unit is compiled by nvcc (EIGEN_NO_CUDA: Eigen stays
// host-only here); main (rlxf_mona.cpp) claims the GPU before anything is written and hands
// it over.
#include <rlxf/cuda/gpu.hpp>

#include "rlxf_mona_pipeline.hpp"

namespace rlxf_mona {

void run_on_gpu(const Job& job, cuda::Backend<cuda::Gpu>& gpu) {
  run_stages(job, nn::BackendRef<cuda::Backend<cuda::Gpu>>(gpu));
}

}  // namespace rlxf_mona
