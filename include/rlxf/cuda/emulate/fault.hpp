#pragma once
// KernelFault: what the emulator throws when a kernel does something that is wrong on a GPU
// even if it happens to work on the CPU. The message names the kernel, block and thread,
// the shared array and element, or the barrier's source line.
#include <string>

#include "rlxf/core/error.hpp"

namespace rlxf::cuda::emulate {

enum class Fault {
  shared_out_of_bounds,  // a shared-memory index outside its array or the launch's bytes
  shared_race,           // two threads touch a byte, one writing, with no barrier between
  uninitialised_read,    // shared memory read before any thread of the block wrote it
  barrier_divergence,    // a block barrier not reached by every thread, or at two places
  warp_divergence,       // a warp-wide operation not reached by all 32 lanes together
  misaligned,            // a vector or WMMA access whose address breaks the alignment rule
  bad_launch,            // block size, shared memory or fragment shape the GPU would refuse
};

class KernelFault : public Error {
 public:
  KernelFault(Fault kind, std::string message) : Error(std::move(message)), kind_(kind) {}
  Fault kind() const noexcept { return kind_; }

 private:
  Fault kind_;
};

template <class... Args>
[[noreturn]] void raise(Fault kind, const Args&... args) {
  throw KernelFault(kind, detail::concat(args...));
}

}  // namespace rlxf::cuda::emulate
