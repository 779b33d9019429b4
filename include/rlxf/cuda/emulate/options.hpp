#pragma once
// How the emulator runs a launch.
#include <cstddef>
#include <cstdint>

namespace rlxf::cuda::emulate {

// Which lane holds which element of a WMMA fragment. CUDA leaves it unspecified, so a
// correct kernel gives the same result under both: `natural` (lane-major, row-major) and
// `permuted` (a seed-shuffled map, different for each fragment kind). Run every test twice.
enum class FragmentLayout { natural, permuted };

struct Options {
  FragmentLayout fragments = FragmentLayout::natural;
  std::uint64_t seed = 0;       // of the permuted layouts and of the shuffled block order
  bool shuffle_blocks = false;  // run blocks in a seeded random order instead of x, y, z
  // Check every shared-memory access: bounds, races between barriers, reads of bytes no
  // thread wrote. Off is faster; bounds of whole arrays are still checked when carved.
  bool check_shared = true;
  int max_shared_bytes = 227 * 1024;  // per block: sm_90's opt-in limit (sm_80: 163 KB)
  int max_threads_per_block = 1024;
  std::size_t stack_bytes = 128 * 1024;  // per GPU thread (a fiber stack)
};

}  // namespace rlxf::cuda::emulate
