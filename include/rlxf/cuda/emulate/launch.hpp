#pragma once
// emulate::launch: runs a kernel's grid on the CPU, block after block, each block's threads
// as fibers (BlockRunner). Kernels are structs
//   struct MyKernel {
//     using Params = ...;                  // a plain struct of pointers and sizes
//     static constexpr int max_threads = 128;  // __launch_bounds__ on the GPU
//     static constexpr int min_blocks = 1;
//     template <class Ctx> RLXF_DEVICE static void run(Ctx& ctx, const Params& p);
//   };
// and the same struct launches on a GPU through cuda::launch (launch.hpp).
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <vector>

#include "rlxf/cuda/emulate/block.hpp"
#include "rlxf/cuda/emulate/context.hpp"
#include "rlxf/cuda/emulate/options.hpp"

namespace rlxf::cuda::emulate {

template <class Kernel>
void launch(const LaunchConfig& config, const typename Kernel::Params& params, const Options& options = {}) {
  const long long threads = config.block.count();
  if (config.grid.x < 1 || config.grid.y < 1 || config.grid.z < 1 || threads < 1)
    raise(Fault::bad_launch, "empty launch: grid (", config.grid.x, ",", config.grid.y, ",",
          config.grid.z, "), block (", config.block.x, ",", config.block.y, ",", config.block.z, ")");
  if (threads > Kernel::max_threads || threads > options.max_threads_per_block)
    raise(Fault::bad_launch, "a block of ", threads, " threads exceeds the kernel's launch bound of ",
          Kernel::max_threads, " (device limit ", options.max_threads_per_block, ")");
  if (config.shared_bytes < 0 || config.shared_bytes > options.max_shared_bytes)
    raise(Fault::bad_launch, config.shared_bytes, " bytes of dynamic shared memory exceed the ",
          options.max_shared_bytes, " a block may use");

  std::vector<Dim3> order;
  order.reserve(static_cast<std::size_t>(config.grid.count()));
  for (int z = 0; z < config.grid.z; ++z)
    for (int y = 0; y < config.grid.y; ++y)
      for (int x = 0; x < config.grid.x; ++x) order.push_back(Dim3{x, y, z});
  if (options.shuffle_blocks) {  // seeded Fisher-Yates (an LCG is plenty for an order)
    std::uint64_t s = options.seed * 6364136223846793005ull + 1442695040888963407ull;
    for (std::size_t i = order.size(); i > 1; --i) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      std::swap(order[i - 1], order[(s >> 33) % i]);
    }
  }

  BlockRunner block(config, options, stack_pool(options.stack_bytes));
  auto body = [&](int rank) {
    Context ctx(block, rank);
    Kernel::run(ctx, params);
  };
  for (const Dim3& b : order) block.run(b, body);
}

// The launcher host dispatch functions (see KernelTag) take to run under the emulator.
struct Launcher {
  Options options;
  mutable std::uint64_t launches = 0;  // kernels launched through this launcher so far
  template <class Kernel>
  void operator()(KernelTag<Kernel>, const LaunchConfig& config, const typename Kernel::Params& params) const {
    ++launches;
    launch<Kernel>(config, params, options);
  }
};

}  // namespace rlxf::cuda::emulate
