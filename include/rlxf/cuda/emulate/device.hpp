#pragma once
// emulate::Device: the CPU emulator as cuda::Backend's Device (see cuda/backend.hpp), so
// cuda::Backend<emulate::Device> runs the GPU backend's exact sequence of kernels and
// launch configurations on a machine without a GPU, every kernel's shared memory, barriers
// and warp operations checked (emulate/launch.hpp). Memory is host memory, 256-byte aligned
// as cudaMalloc's; everything runs synchronously, in call order.
//
//   rlxf::cuda::Backend<rlxf::cuda::emulate::Device> emu;              // an A100's 108 SMs
//   rlxf::cuda::Backend<rlxf::cuda::emulate::Device> h100{rlxf::cuda::emulate::Device({}, 132)};
//
// sm_count only steers the GEMM's choice of tile size (large tiles when they fill every SM).
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/core/backend.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/backend.hpp"
#include "rlxf/cuda/emulate/launch.hpp"
#include "rlxf/cuda/emulate/options.hpp"

namespace rlxf::cuda::emulate {

class Device {
 public:
  template <class T>
  using Buffer = std::vector<T, AlignedAllocator<T>>;

  static constexpr std::string_view name() { return "cuda-emulated"; }

  explicit Device(Options options = {}, int sm_count = 108) : launcher_{options}, sm_count_(sm_count) {
    RLXF_REQUIRE(sm_count >= 1, "emulate::Device: sm_count must be positive, got ", sm_count);
  }

  int sm_count() const { return sm_count_; }
  // How the emulator runs each launch (fragment layout, block order, shared-memory checks).
  Options& options() { return launcher_.options; }
  const Options& options() const { return launcher_.options; }
  const Launcher& launcher() const { return launcher_; }
  // Kernels launched on this device so far (what a test counts to check an op's launches).
  std::uint64_t launches() const { return launcher_.launches; }

  template <class T>
  Buffer<T> allocate(std::size_t n) const {
    ++allocations_;
    return Buffer<T>(n);
  }
  // Buffers allocated on this device so far (what a test counts to check that a step allocates
  // nothing).
  std::uint64_t allocations() const { return allocations_; }
  template <class T>
  void copy_to_device(std::span<const T> host, Buffer<T>& buf) const {
    RLXF_REQUIRE(host.size() == buf.size(), "emulate::Device: copying ", host.size(), " elements into ", buf.size());
    std::copy(host.begin(), host.end(), buf.begin());
  }
  template <class T>
  void copy_to_host(const Buffer<T>& buf, std::span<T> host) const {
    RLXF_REQUIRE(host.size() == buf.size(), "emulate::Device: copying ", buf.size(), " elements into ", host.size());
    std::copy(buf.begin(), buf.end(), host.begin());
  }
  void zero(void* p, std::size_t bytes) const {
    if (bytes != 0) std::memset(p, 0, bytes);
  }
  // Any direction (host memory stands for both sides), in order with the launches.
  void copy_bytes(void* dst, const void* src, std::size_t bytes) const {
    if (bytes != 0) std::memmove(dst, src, bytes);
  }
  void synchronize() const {}

 private:
  Launcher launcher_;
  int sm_count_;
  mutable std::uint64_t allocations_ = 0;
};

static_assert(rlxf::TrainingBackend<cuda::Backend<Device>>,
              "cuda::Backend<emulate::Device> must model rlxf::TrainingBackend");

}  // namespace rlxf::cuda::emulate
