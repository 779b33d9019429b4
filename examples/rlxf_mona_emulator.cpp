// rlxf_mona --device cuda-emulator: the main job's models on cuda::Backend<cuda::emulate::Device>,
// the CUDA backend with every kernel run by the CPU emulator (bf16 weights and activations,
// f32 master weights, the GPU's kernels and their arithmetic), so the GPU's code path can be
// run and checked on a machine without one. Slow (each kernel thread is emulated): meant for
// small configurations. A translation unit of its own so that it compiles beside the rest.
#include <rlxf/cuda/emulate/device.hpp>

#include "rlxf_mona_pipeline.hpp"

namespace rlxf_mona {

void run_on_emulator(const Job& job) {
  using Emulated = cuda::Backend<cuda::emulate::Device>;
  // Shared-memory accesses unchecked: the kernel tests check them; here it saves a third of the time.
  Emulated backend(cuda::emulate::Device(cuda::emulate::Options{.check_shared = false}));
  std::printf("device: the CUDA backend on the CPU emulator (slow; for checking the GPU's code path)\n");
  run_stages(job, nn::BackendRef<Emulated>(backend));
}

}  // namespace rlxf_mona
