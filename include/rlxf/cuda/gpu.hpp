#pragma once
// cuda::Gpu: a CUDA device as cuda::Backend's Device (see backend.hpp): DeviceBuffer memory,
// one owned non-blocking Stream that every copy, memset and kernel of the backend is queued
// on, the SM count that picks GEMM tiles, and StreamLauncher.
//
//   rlxf::cuda::Backend<rlxf::cuda::Gpu> gpu;   // GPU 0; or Backend<Gpu>(Gpu(ordinal))
//
// Construction calls require_device(): without a usable GPU or driver it throws rlxf::Error
// "rlxf CUDA backend: no usable GPU: ... ; the CPU backend (rlxf::cpu) works without one".
// This header compiles with the host compiler too (link CUDA::cudart, or rlxf::cuda), so a
// plain C++ program can construct a Gpu and report that error; but kernels are compiled by
// nvcc only, so the ops of Backend<Gpu> (everything that launches) must be called from a
// .cu translation unit: elsewhere launcher() fails to compile with a static_assert saying so.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "rlxf/concepts.hpp"
#include "rlxf/cuda/backend.hpp"
#include "rlxf/cuda/device_buffer.hpp"
#include "rlxf/cuda/runtime.hpp"

#if defined(__CUDACC__)
#include "rlxf/cuda/launch.hpp"  // StreamLauncher
#endif

namespace rlxf::cuda {

namespace gpu_detail {
template <class>
inline constexpr bool compiled_by_nvcc = false;

// What launcher() returns in a host-compiler translation unit: never usable (launcher()
// does not compile there), it only keeps the error at that one static_assert.
struct HostCompilerLauncher {
  template <class Kernel, class Params>
  void operator()(KernelTag<Kernel>, const LaunchConfig&, const Params&) const {}
};
}  // namespace gpu_detail

class Gpu {
 public:
  template <class T>
  using Buffer = DeviceBuffer<T>;

  static constexpr std::string_view name() { return "cuda"; }

  // Claims device `ordinal` (makes it current) and creates the stream. Throws rlxf::Error
  // "no usable GPU" without a GPU or driver, "out of range" for a missing ordinal.
  // Its buffers come from the device's stream-ordered memory pool (DeviceBuffer), which keeps
  // the memory they free for the next allocations: after the first training step of a shape,
  // the steps after it allocate nothing from the driver and never wait on an allocation.
  explicit Gpu(int ordinal = 0) : properties_(require_device(ordinal)), stream_() { keep_freed_memory(ordinal); }

  const DeviceProperties& properties() const { return properties_; }
  const Stream& stream() const { return stream_; }
  int sm_count() const { return properties_.sm_count; }

  // n uninitialised elements, allocated (and freed) in stream order.
  template <class T>
  DeviceBuffer<T> allocate(std::size_t n) const {
    return DeviceBuffer<T>(n, stream_.get());
  }
  // Queued on the stream, then waited for (the host span may be freed on return).
  template <class T>
  void copy_to_device(std::span<const T> host, DeviceBuffer<T>& buf) const {
    buf.copy_from_host_async(host, stream_);
    stream_.synchronize();
  }
  // After the work queued so far.
  template <class T>
  void copy_to_host(const DeviceBuffer<T>& buf, std::span<T> host) const {
    buf.copy_to_host_async(host, stream_);
    stream_.synchronize();
  }
  void zero(void* p, std::size_t bytes) const {
    if (bytes != 0) check(cudaMemsetAsync(p, 0, bytes, stream_.get()), "cudaMemsetAsync");
  }
  // Queued on the stream; the direction (host or device on either side) from the pointers.
  void copy_bytes(void* dst, const void* src, std::size_t bytes) const {
    if (bytes != 0) check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream_.get()), "cudaMemcpyAsync");
  }
  void synchronize() const { stream_.synchronize(); }

#if defined(__CUDACC__)
  StreamLauncher launcher() const { return StreamLauncher{stream_.get()}; }
#else
  template <class Dependent = void>
  gpu_detail::HostCompilerLauncher launcher() const {
    static_assert(gpu_detail::compiled_by_nvcc<Dependent>,
                  "cuda::Backend<cuda::Gpu>'s ops launch CUDA kernels: call them from a .cu file compiled by "
                  "nvcc (a host-compiler translation unit may construct a Gpu, copy memory and synchronize, "
                  "but not launch; on a machine without a GPU use cuda::Backend<cuda::emulate::Device>)");
    return {};
  }
#endif

 private:
  // The pool's release threshold at its maximum: memory freed into it stays there.
  static void keep_freed_memory(int ordinal) {
    cudaMemPool_t pool = nullptr;
    check(cudaDeviceGetDefaultMemPool(&pool, ordinal), "cudaDeviceGetDefaultMemPool");
    std::uint64_t keep = UINT64_MAX;
    check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep),
          "cudaMemPoolSetAttribute(release threshold)");
  }

  DeviceProperties properties_;
  Stream stream_;
};

static_assert(rlxf::TrainingBackend<Backend<Gpu>>, "cuda::Backend<cuda::Gpu> must model rlxf::TrainingBackend");

}  // namespace rlxf::cuda
