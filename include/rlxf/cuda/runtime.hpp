#pragma once
// The CUDA runtime layer of rlxf's GPU path: error checking, device discovery, and RAII
// streams and events. Plain host C++ over cuda_runtime_api.h (compiles with g++ and nvcc;
// link CUDA::cudart, or the rlxf::cuda target which links everything the GPU path needs).
//
// Every failed runtime call throws rlxf::Error naming the call, the error's enumerator name,
// its number and NVIDIA's description, e.g.
//   "rlxf CUDA backend: cudaMalloc(4096 bytes) failed with cudaErrorMemoryAllocation (2):
//    out of memory"
// Without a usable GPU or driver the runtime reports cudaErrorInsufficientDriver (35) or
// cudaErrorNoDevice (100) from its first call; require_device() turns that into a clear
// "no usable GPU" error, and the other entry points of rlxf::cuda (buffers, cuBLAS and cuDNN
// handles) check for a device the same way before touching it. The CPU backend (rlxf::cpu)
// never needs one.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "rlxf/core/error.hpp"

namespace rlxf::cuda {

// The hint appended to every "no usable GPU" error.
inline constexpr std::string_view cpu_fallback_hint =
    "the CPU backend (rlxf::cpu) works without one";

namespace runtime_detail {
// "cudaErrorInsufficientDriver (35): CUDA driver version is insufficient for CUDA runtime version"
inline std::string describe(cudaError_t code) {
  return rlxf::detail::concat(cudaGetErrorName(code), " (", static_cast<int>(code),
                              "): ", cudaGetErrorString(code));
}
// Errors that mean "there is no GPU this process can use" rather than "this call was wrong".
inline bool means_no_device(cudaError_t code) {
  return code == cudaErrorInsufficientDriver || code == cudaErrorNoDevice ||
         code == cudaErrorDevicesUnavailable || code == cudaErrorStubLibrary ||
         code == cudaErrorCallRequiresNewerDriver || code == cudaErrorSystemDriverMismatch ||
         code == cudaErrorCompatNotSupportedOnDevice || code == cudaErrorInitializationError;
}
}  // namespace runtime_detail

// Throws rlxf::Error unless `code` is cudaSuccess: "rlxf CUDA backend: <what> failed with
// <name> (<number>): <description>", plus the CPU-backend hint when the error means that no
// GPU is usable. The runtime's last-error state is cleared, so a later cudaGetLastError()
// does not report this failure a second time.
inline void check(cudaError_t code, std::string_view what) {
  if (code == cudaSuccess) return;
  (void)cudaGetLastError();
  if (runtime_detail::means_no_device(code))
    fail("rlxf CUDA backend: no usable GPU: ", what, " failed with ", runtime_detail::describe(code), "; ",
         cpu_fallback_hint);
  fail("rlxf CUDA backend: ", what, " failed with ", runtime_detail::describe(code));
}

// Number of CUDA devices this process can use; 0 (never an exception) when there is no GPU
// or no driver. require_device() says why.
inline int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

// What rlxf's kernels and backends need to know about a device. Filled from the runtime by
// device_properties(), or by hand for a GPU this machine does not have (occupancy estimates,
// cuDNN plans built ahead of time: see cudnn_attention.hpp).
struct DeviceProperties {
  std::string name;                          // "NVIDIA A100-SXM4-40GB"
  int ordinal = 0;                           // device index in this process
  int sm_major = 0, sm_minor = 0;            // compute capability, 8.0 for sm_80
  int sm_count = 0;                          // streaming multiprocessors
  int warp_size = 32;
  int max_threads_per_block = 1024;
  int max_threads_per_sm = 2048;
  int max_blocks_per_sm = 32;
  int max_block_dim[3] = {1024, 1024, 64};
  int max_grid_dim[3] = {2147483647, 65535, 65535};
  int regs_per_block = 65536;                // 32-bit registers one block may use
  int regs_per_sm = 65536;
  std::size_t smem_per_block = 49152;        // without opt-in
  std::size_t smem_per_block_optin = 49152;  // with cudaFuncAttributeMaxDynamicSharedMemorySize
  std::size_t smem_per_sm = 0;
  std::size_t smem_reserved_per_block = 0;   // taken by the system from each block's share
  std::size_t global_mem_bytes = 0;
  int l2_cache_bytes = 0;
  int sm_clock_khz = 0;                      // peak clocks
  int mem_clock_khz = 0;
  int pci_device_id = 0;
  bool cooperative_launch = false;
  bool tcc_driver = false;
  int driver_version = 0;                    // cudaDriverGetVersion: 13000 for CUDA 13.0

  // The compute capability as nvcc spells the architecture number: 80 for sm_80.
  int sm() const { return sm_major * 10 + sm_minor; }
};

namespace runtime_detail {
// Throws the "no usable GPU" error unless the runtime sees at least one device. `who` names
// the operation that needed one ("cublasCreate", "require_device(0)").
inline int require_any_device(std::string_view who) {
  int n = 0;
  const cudaError_t code = cudaGetDeviceCount(&n);
  if (code != cudaSuccess) {
    (void)cudaGetLastError();
    fail("rlxf CUDA backend: no usable GPU: ", who, ": cudaGetDeviceCount failed with ",
         describe(code), "; ", cpu_fallback_hint);
  }
  if (n == 0)
    fail("rlxf CUDA backend: no usable GPU: ", who, ": the CUDA runtime found no device; ",
         cpu_fallback_hint);
  return n;
}

inline int attribute(cudaDeviceAttr attr, int ordinal, std::string_view name) {
  int value = 0;
  check(cudaDeviceGetAttribute(&value, attr, ordinal), name);
  return value;
}
}  // namespace runtime_detail

// Properties of device `ordinal`, read from the runtime. Throws like require_device().
inline DeviceProperties device_properties(int ordinal) {
  const int n = runtime_detail::require_any_device("device_properties");
  if (ordinal < 0 || ordinal >= n)
    fail("rlxf CUDA backend: device ordinal ", ordinal, " is out of range: ", n,
         " device(s) present");
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, ordinal), "cudaGetDeviceProperties");
  DeviceProperties d;
  d.name = p.name;
  d.ordinal = ordinal;
  d.sm_major = p.major;
  d.sm_minor = p.minor;
  d.sm_count = p.multiProcessorCount;
  d.warp_size = p.warpSize;
  d.max_threads_per_block = p.maxThreadsPerBlock;
  d.max_threads_per_sm = p.maxThreadsPerMultiProcessor;
  d.max_blocks_per_sm = p.maxBlocksPerMultiProcessor;
  for (int i = 0; i < 3; ++i) {
    d.max_block_dim[i] = p.maxThreadsDim[i];
    d.max_grid_dim[i] = p.maxGridSize[i];
  }
  d.regs_per_block = p.regsPerBlock;
  d.regs_per_sm = p.regsPerMultiprocessor;
  d.smem_per_block = p.sharedMemPerBlock;
  d.smem_per_block_optin = p.sharedMemPerBlockOptin;
  d.smem_per_sm = p.sharedMemPerMultiprocessor;
  d.smem_reserved_per_block = p.reservedSharedMemPerBlock;
  d.global_mem_bytes = p.totalGlobalMem;
  d.l2_cache_bytes = p.l2CacheSize;
  // CUDA 13 dropped the clock fields from cudaDeviceProp; the attributes remain.
  d.sm_clock_khz = runtime_detail::attribute(cudaDevAttrClockRate, ordinal, "cudaDeviceGetAttribute(ClockRate)");
  d.mem_clock_khz =
      runtime_detail::attribute(cudaDevAttrMemoryClockRate, ordinal, "cudaDeviceGetAttribute(MemoryClockRate)");
  d.pci_device_id = p.pciDeviceID;
  d.cooperative_launch = p.cooperativeLaunch != 0;
  d.tcc_driver = p.tccDriver != 0;
  check(cudaDriverGetVersion(&d.driver_version), "cudaDriverGetVersion");
  return d;
}

// Checks that device `ordinal` exists and is usable, makes it the calling thread's current
// device and returns its properties. Without a GPU or driver this throws, e.g.
//   "rlxf CUDA backend: no usable GPU: require_device(0): cudaGetDeviceCount failed with
//    cudaErrorInsufficientDriver (35): CUDA driver version is insufficient for CUDA runtime
//    version; the CPU backend (rlxf::cpu) works without one"
inline DeviceProperties require_device(int ordinal = 0) {
  const std::string who = rlxf::detail::concat("require_device(", ordinal, ")");
  const int n = runtime_detail::require_any_device(who);
  if (ordinal < 0 || ordinal >= n)
    fail("rlxf CUDA backend: ", who, ": device ordinal ", ordinal, " is out of range: ", n,
         " device(s) present");
  check(cudaSetDevice(ordinal), rlxf::detail::concat("cudaSetDevice(", ordinal, ")"));
  return device_properties(ordinal);
}

// Blocks until all work on the current device has finished; reports asynchronous errors of
// earlier kernels.
inline void synchronize_device() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

// An owned CUDA stream (cudaStreamCreateWithFlags, non-blocking with respect to the legacy
// default stream). Move-only; destroyed with cudaStreamDestroy, which lets queued work finish.
class Stream {
 public:
  Stream() {
    runtime_detail::require_any_device("cudaStreamCreate");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  }
  ~Stream() {
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
  }
  Stream(Stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
  Stream& operator=(Stream&& other) noexcept {
    if (this != &other) {
      if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
      stream_ = std::exchange(other.stream_, nullptr);
    }
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const noexcept { return stream_; }
  // Blocks until every operation queued on the stream has finished.
  void synchronize() const { check(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); }

 private:
  cudaStream_t stream_ = nullptr;
};

// An owned CUDA event with timing enabled, for measuring GPU time between two points of a
// stream (benchmarks). Move-only.
//   Event start, stop; start.record(s); ...launches on s...; stop.record(s);
//   float ms = Event::elapsed_ms(start, stop);   // waits for stop
class Event {
 public:
  Event() {
    runtime_detail::require_any_device("cudaEventCreate");
    check(cudaEventCreate(&event_), "cudaEventCreate");
  }
  ~Event() {
    if (event_ != nullptr) (void)cudaEventDestroy(event_);
  }
  Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
  Event& operator=(Event&& other) noexcept {
    if (this != &other) {
      if (event_ != nullptr) (void)cudaEventDestroy(event_);
      event_ = std::exchange(other.event_, nullptr);
    }
    return *this;
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  cudaEvent_t get() const noexcept { return event_; }
  // Marks the point in `stream` reached once all work queued on it so far has finished.
  void record(const Stream& stream) { check(cudaEventRecord(event_, stream.get()), "cudaEventRecord"); }
  // Blocks until the recorded point has been reached.
  void synchronize() const { check(cudaEventSynchronize(event_), "cudaEventSynchronize"); }

  // Milliseconds of GPU time between two recorded events (resolution about 0.5 us); waits
  // for `stop` first.
  static float elapsed_ms(const Event& start, const Event& stop) {
    stop.synchronize();
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start.event_, stop.event_), "cudaEventElapsedTime");
    return ms;
  }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace rlxf::cuda
