#pragma once
// DeviceBuffer<T>: an owned array of T in GPU global memory (cudaMalloc / cudaFree, or the
// stream-ordered cudaMallocAsync / cudaFreeAsync of the device's memory pool), the storage
// every GPU entry point of rlxf takes pointers into. Move-only; copies between host
// and device are explicit and check that both sides hold the same number of elements.
//
// The element type is any trivially copyable T; rlxf::f16 and rlxf::bf16 (core/dtype.hpp)
// have the bit layout of CUDA's __half and __nv_bfloat16, so a DeviceBuffer<f16> feeds
// cuBLAS and cuDNN directly.
//
// Asynchronous copies are queued on a Stream; they overlap with host work only when the
// host memory is pinned (cudaHostAlloc / cudaHostRegister), otherwise the runtime stages
// them through a pinned buffer and returns once the host side has been read. Either way the
// host span must stay alive (and, for copies to the host, unread) until the stream has been
// synchronised.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/cuda/runtime.hpp"

namespace rlxf::cuda {

template <class T>
class DeviceBuffer {
  static_assert(std::is_trivially_copyable_v<T>,
                "DeviceBuffer<T> holds raw bytes copied with cudaMemcpy: T must be trivially copyable");

 public:
  using value_type = T;

  // An empty buffer: no allocation, data() == nullptr.
  DeviceBuffer() = default;

  // `count` uninitialised elements. count == 0 allocates nothing (and so needs no GPU).
  // Throws rlxf::Error when there is no usable GPU or not enough device memory.
  explicit DeviceBuffer(std::size_t count) : size_(count) {
    if (count == 0) return;
    void* p = nullptr;
    check(cudaMalloc(&p, count * sizeof(T)),
          rlxf::detail::concat("cudaMalloc(", count * sizeof(T), " bytes)"));
    data_ = static_cast<T*>(p);
  }

  // `count` uninitialised elements from the device's memory pool, allocated and later freed in
  // the order of `stream` (cudaMallocAsync / cudaFreeAsync): neither waits for the device, and
  // memory freed on the stream is reused by later allocations on it (cuda::Gpu keeps the pool's
  // freed memory instead of returning it to the driver). `stream` must outlive the buffer.
  DeviceBuffer(std::size_t count, cudaStream_t stream) : size_(count), stream_(stream), pooled_(true) {
    if (count == 0) return;
    void* p = nullptr;
    check(cudaMallocAsync(&p, count * sizeof(T), stream),
          rlxf::detail::concat("cudaMallocAsync(", count * sizeof(T), " bytes)"));
    data_ = static_cast<T*>(p);
  }

  // A buffer holding a copy of `host` (synchronous).
  static DeviceBuffer from_host(std::span<const T> host) {
    DeviceBuffer b(host.size());
    b.copy_from_host(host);
    return b;
  }

  ~DeviceBuffer() { release(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)),
        stream_(std::exchange(other.stream_, nullptr)), pooled_(std::exchange(other.pooled_, false)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      stream_ = std::exchange(other.stream_, nullptr);
      pooled_ = std::exchange(other.pooled_, false);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  // Device pointer to element 0 (nullptr when empty). Never dereference it on the host.
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t bytes() const noexcept { return size_ * sizeof(T); }
  bool empty() const noexcept { return size_ == 0; }

  // device[0, size) = host[0, size); host.size() must equal size(). Blocks until done.
  void copy_from_host(std::span<const T> host) {
    require_same_size("copy_from_host", host.size());
    if (size_ != 0)
      check(cudaMemcpy(data_, host.data(), bytes(), cudaMemcpyHostToDevice),
            "cudaMemcpy(host to device)");
  }
  // host[0, size) = device[0, size); host.size() must equal size(). Blocks until done.
  void copy_to_host(std::span<T> host) const {
    require_same_size("copy_to_host", host.size());
    if (size_ != 0)
      check(cudaMemcpy(host.data(), data_, bytes(), cudaMemcpyDeviceToHost),
            "cudaMemcpy(device to host)");
  }
  // The whole buffer copied into a new host vector. Blocks until done.
  std::vector<T> to_host() const {
    std::vector<T> host(size_);
    copy_to_host(host);
    return host;
  }
  // this[0, size) = other[0, size) on the device; the sizes must match. Blocks until done.
  void copy_from_device(const DeviceBuffer& other) {
    require_same_size("copy_from_device", other.size());
    if (size_ != 0)
      check(cudaMemcpy(data_, other.data_, bytes(), cudaMemcpyDeviceToDevice),
            "cudaMemcpy(device to device)");
  }

  // The copies above queued on `stream` (see the header comment on host memory lifetime).
  void copy_from_host_async(std::span<const T> host, const Stream& stream) {
    require_same_size("copy_from_host_async", host.size());
    if (size_ != 0)
      check(cudaMemcpyAsync(data_, host.data(), bytes(), cudaMemcpyHostToDevice, stream.get()),
            "cudaMemcpyAsync(host to device)");
  }
  void copy_to_host_async(std::span<T> host, const Stream& stream) const {
    require_same_size("copy_to_host_async", host.size());
    if (size_ != 0)
      check(cudaMemcpyAsync(host.data(), data_, bytes(), cudaMemcpyDeviceToHost, stream.get()),
            "cudaMemcpyAsync(device to host)");
  }
  void copy_from_device_async(const DeviceBuffer& other, const Stream& stream) {
    require_same_size("copy_from_device_async", other.size());
    if (size_ != 0)
      check(cudaMemcpyAsync(data_, other.data_, bytes(), cudaMemcpyDeviceToDevice, stream.get()),
            "cudaMemcpyAsync(device to device)");
  }

  // Sets every byte to 0 (0.0 for f32, f16 and bf16). Blocks until done.
  void zero() {
    if (size_ != 0) check(cudaMemset(data_, 0, bytes()), "cudaMemset");
  }
  // zero() queued on `stream`.
  void zero_async(const Stream& stream) {
    if (size_ != 0) check(cudaMemsetAsync(data_, 0, bytes(), stream.get()), "cudaMemsetAsync");
  }

 private:
  void require_same_size(const char* what, std::size_t other) const {
    if (other != size_)
      fail("rlxf CUDA backend: DeviceBuffer::", what, ": the other side holds ", other,
           " elements but the device buffer holds ", size_);
  }
  void release() noexcept {
    if (data_ != nullptr) (void)(pooled_ ? cudaFreeAsync(data_, stream_) : cudaFree(data_));
    data_ = nullptr;
    size_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  cudaStream_t stream_ = nullptr;  // the stream of a pooled buffer
  bool pooled_ = false;
};

}  // namespace rlxf::cuda
