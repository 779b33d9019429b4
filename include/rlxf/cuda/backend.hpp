#pragma once
// cuda::Backend<Device>: the Backend concept (concepts.hpp) over rlxf's CUDA kernels, the
// same code for two devices:
//   cuda::Gpu (cuda/gpu.hpp)               a real GPU: DeviceBuffer memory, one CUDA stream,
//                                          kernels launched by StreamLauncher (nvcc only);
//   cuda::emulate::Device (emulate/device.hpp)  host memory, every kernel run by the CPU
//                                          emulator (tests on machines without a GPU).
// Include the device's header; it includes this one and checks that the pair models Backend.
//
// value_type is bf16: the GEMMs run on tensor cores only for 16-bit inputs (f32 GEMMs take
// the much slower SIMT path), the fused attention kernels take only f16 / bf16, and bf16
// keeps f32's exponent range, so activations and gradients need no loss scaling (f16
// would). Every kernel computes in f32 and rounds once to bf16 when it stores; statistics
// (lse, mean, rstd) stay f32.
//
// Gradients: the concept says every backward ADDS into its gradients. The GELU and layer-
// norm input gradients do so natively (accumulate = true). The attention backward kernels
// WRITE dq, dk, dv, and the layer-norm parameter gradients are f32 sums; both go to scratch
// first (a workspace the backend owns and reuses) and are then added by the Add kernel
// (elementwise/add.hpp). The attention gradients are thus rounded to bf16 twice (the
// kernel's result, then the sum), at most one more half-ulp.
//
// A Device provides (see gpu.hpp, emulate/device.hpp):
//   template <class T> using Buffer;          RAII array in device memory: data(), size()
//   template <class T> Buffer<T> allocate(n)  n uninitialised elements
//   copy_to_device(std::span<const T>, Buffer<T>&), copy_to_host(const Buffer<T>&, std::span<T>):
//                                             complete on return (the latter after queued work)
//   zero(void* p, std::size_t bytes)          queued in order with the launches
//   synchronize(); sm_count(); launcher()     (a launcher: see KernelTag in platform.hpp)
//   static name()
#include <climits>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/core/backend.hpp"
#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/attention/attention.hpp"
#include "rlxf/cuda/elementwise/activations.hpp"
#include "rlxf/cuda/elementwise/add.hpp"
#include "rlxf/cuda/elementwise/layernorm.hpp"
#include "rlxf/cuda/gemm/dispatch.hpp"
#include "rlxf/cuda/numeric.hpp"

namespace rlxf::cuda {

namespace backend_detail {
// Byte offsets of consecutive workspace regions, each 256-byte aligned (as cudaMalloc).
struct Carve {
  static constexpr std::size_t align = 256;
  std::size_t bytes = 0;
  template <class T>
  std::size_t take(std::size_t count) {
    const std::size_t at = bytes;
    bytes += (count * sizeof(T) + align - 1) / align * align;
    return at;
  }
  template <class T>
  static T* at(std::byte* base, std::size_t offset) {
    return reinterpret_cast<T*>(base + offset);
  }
};
}  // namespace backend_detail

template <class Device>
class Backend {
 public:
  using value_type = bf16;
  template <class T>
  using Buffer = typename Device::template Buffer<T>;

  static constexpr std::string_view name() { return Device::name(); }

  // Backend<Gpu>{} claims GPU 0 (and throws rlxf::Error "no usable GPU" without one).
  Backend() = default;
  explicit Backend(Device device) : device_(std::move(device)) {}

  Device& device() { return device_; }
  const Device& device() const { return device_; }

  // The attention backward's dq accumulation: false (default, FlashAttention's) adds the key
  // tiles' contributions with f32 atomics, so the last bits of dq vary between runs; true
  // sums one slice per key tile in a fixed order (bitwise reproducible, kv_len / 64 times
  // the dq workspace).
  void set_deterministic(bool on) { deterministic_ = on; }
  bool deterministic() const { return deterministic_; }

  // n zero elements.
  template <class T>
  Buffer<T> allocate(std::size_t n) {
    Buffer<T> buf = device_.template allocate<T>(n);
    if (n != 0) device_.zero(buf.data(), n * sizeof(T));
    return buf;
  }

  void upload(std::span<const float> host, Buffer<bf16>& buf) {
    RLXF_REQUIRE(host.size() == buf.size(), "cuda::Backend::upload: ", host.size(), " host values for a buffer of ",
                 buf.size());
    std::vector<bf16> staged(host.size());
    for (std::size_t i = 0; i < host.size(); ++i) staged[i] = from_float<bf16>(host[i]);
    device_.copy_to_device(std::span<const bf16>(staged), buf);
  }
  void download(const Buffer<bf16>& buf, std::span<float> host) {
    RLXF_REQUIRE(host.size() == buf.size(), "cuda::Backend::download: a buffer of ", buf.size(), " values into ",
                 host.size(), " host values");
    std::vector<bf16> staged(buf.size());
    device_.copy_to_host(buf, std::span<bf16>(staged));
    for (std::size_t i = 0; i < host.size(); ++i) host[i] = to_float(staged[i]);
  }
  void synchronize() { device_.synchronize(); }

  // ---- ops (the Backend concept's; bf16 storage, f32 arithmetic) ----

  void gemm(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, float alpha, const bf16* A,
            std::size_t lda, const bf16* B, std::size_t ldb, float beta, bf16* C, std::size_t ldc) {
    GemmParams<bf16, bf16> p;
    p.a = A;
    p.b = B;
    p.c = C;
    p.m = to_int(M, "M");
    p.n = to_int(N, "N");
    p.k = to_int(K, "K");
    p.lda = to_long(lda);
    p.ldb = to_long(ldb);
    p.ldc = to_long(ldc);
    p.alpha = alpha;
    p.beta = beta;
    dispatch_gemm(device_.launcher(), ta == Transpose::yes, tb == Transpose::yes, p, device_.sm_count());
  }

  void attention_forward(const bf16* q, const bf16* k, const bf16* v, bf16* o, float* lse, const AttentionDims& dims,
                         const AttentionSettings& settings) {
    const attention::Dims dm = attention_dims(dims, settings);
    attention::forward(attention::ForwardParams<bf16>{dm, q, k, v, o, lse}, device_.launcher());
  }

  void attention_backward(const bf16* q, const bf16* k, const bf16* v, const bf16* o, const float* lse,
                          const bf16* dout, bf16* dq, bf16* dk, bf16* dv, const AttentionDims& dims,
                          const AttentionSettings& settings) {
    const attention::Dims dm = attention_dims(dims, settings);
    if (dm.batch == 0 || dm.q_len == 0) return;
    const attention::Workspace ws = attention::backward_workspace<bf16>(dm, deterministic_);  // checks head_dim
    const std::size_t q_elements = dims.q_elements(), kv_elements = dims.kv_elements();
    backend_detail::Carve carve;
    const std::size_t delta_at = carve.take<float>(ws.delta), accum_at = carve.take<float>(ws.dq_accum);
    const std::size_t dq_at = carve.take<bf16>(q_elements), dk_at = carve.take<bf16>(kv_elements),
                      dv_at = carve.take<bf16>(kv_elements);
    std::byte* base = workspace(carve.bytes);
    bf16* dq_scratch = carve.at<bf16>(base, dq_at);
    bf16* dk_scratch = carve.at<bf16>(base, dk_at);
    bf16* dv_scratch = carve.at<bf16>(base, dv_at);
    // The kernels leave rows [kv_len, kv_stride) of dk, dv (all of them when kv_len = 0)
    // untouched: those rows add zero.
    if (dims.kv_stride() > dims.kv_len && kv_elements != 0) {
      device_.zero(dk_scratch, kv_elements * sizeof(bf16));
      device_.zero(dv_scratch, kv_elements * sizeof(bf16));
    }
    attention::BackwardParams<bf16> p{dm,
                                      q,
                                      k,
                                      v,
                                      o,
                                      dout,
                                      lse,
                                      carve.at<float>(base, delta_at),
                                      carve.at<float>(base, accum_at),
                                      deterministic_,
                                      dq_scratch,
                                      dk_scratch,
                                      dv_scratch};
    attention::backward(p, device_.launcher());
    add_into(dq_scratch, dq, q_elements);
    add_into(dk_scratch, dk, kv_elements);
    add_into(dv_scratch, dv, kv_elements);
  }

  void layernorm_forward(const bf16* x, const bf16* gamma, const bf16* beta, bf16* y, float* mean, float* rstd,
                         std::size_t N, std::size_t C, float eps) {
    LayerNormForwardParams<bf16> p;
    p.x = x;
    p.gamma = gamma;
    p.beta = beta;
    p.y = y;
    p.mean = mean;
    p.rstd = rstd;
    p.N = to_int(N, "N");
    p.C = to_int(C, "C");
    p.eps = eps;
    cuda::layernorm_forward(p, device_.launcher());
  }

  void layernorm_backward(const bf16* dy, const bf16* x, const bf16* gamma, const float* mean, const float* rstd,
                          bf16* dx, bf16* dgamma, bf16* dbeta, std::size_t N, std::size_t C) {
    LayerNormBackwardParams<bf16> p;
    p.N = to_int(N, "N");
    p.C = to_int(C, "C");
    RLXF_REQUIRE(dgamma != nullptr, "cuda::Backend::layernorm_backward: dgamma must not be null");
    if (p.N == 0) return;
    // f32 scratch: the kernel's per-block partial sums, then dgamma and dbeta (zeroed, as
    // the kernel adds into them), added into the bf16 gradients afterwards.
    backend_detail::Carve carve;
    const std::size_t partial_at = carve.take<float>(static_cast<std::size_t>(layernorm_backward_workspace(p.N, p.C)));
    const std::size_t sums_at = carve.take<float>(2 * C);
    std::byte* base = workspace(carve.bytes);
    float* dgamma32 = carve.at<float>(base, sums_at);
    float* dbeta32 = dgamma32 + C;
    device_.zero(dgamma32, 2 * C * sizeof(float));
    p.dy = dy;
    p.x = x;
    p.gamma = gamma;
    p.mean = mean;
    p.rstd = rstd;
    p.dx = dx;
    p.dgamma = dgamma32;
    p.dbeta = dbeta ? dbeta32 : nullptr;
    p.workspace = carve.at<float>(base, partial_at);
    p.accumulate = true;
    cuda::layernorm_backward(p, device_.launcher());
    add_into(dgamma32, dgamma, C);
    if (dbeta) add_into(dbeta32, dbeta, C);
  }

  void gelu_forward(const bf16* x, bf16* y, std::size_t n) {
    cuda::gelu_forward(GeluForwardParams<bf16>{x, y, to_long(n)}, GeluForm::tanh, device_.launcher());
  }
  void gelu_backward(const bf16* x, const bf16* dy, bf16* dx, std::size_t n) {
    cuda::gelu_backward(GeluBackwardParams<bf16>{x, dy, dx, to_long(n), true}, GeluForm::tanh, device_.launcher());
  }

 private:
  // At least `bytes` of device workspace (never null). Grows by reallocation after waiting
  // for queued work that may still use the old one; reused by every later op (the ops run
  // in order on one stream).
  std::byte* workspace(std::size_t bytes) {
    if (bytes == 0) bytes = backend_detail::Carve::align;
    if (workspace_.size() < bytes) {
      device_.synchronize();
      workspace_ = Buffer<std::byte>();
      workspace_ = device_.template allocate<std::byte>(bytes + bytes / 4);
    }
    return workspace_.data();
  }

  template <class TX>
  void add_into(const TX* x, bf16* y, std::size_t n) {
    cuda::add(AddParams<TX, bf16>{x, y, to_long(n)}, device_.launcher());
  }

  static int to_int(std::size_t v, const char* what) {
    RLXF_REQUIRE(v <= static_cast<std::size_t>(INT_MAX), "cuda::Backend: ", what, " = ", v,
                 " exceeds the kernels' int extents");
    return static_cast<int>(v);
  }
  static long to_long(std::size_t v) {
    RLXF_REQUIRE(v <= static_cast<std::size_t>(LONG_MAX), "cuda::Backend: extent ", v, " is too large");
    return static_cast<long>(v);
  }

  static attention::Dims attention_dims(const AttentionDims& d, const AttentionSettings& s) {
    attention::Shape shape;
    shape.batch = to_int(d.batch, "batch");
    shape.q_heads = to_int(d.q_heads, "q_heads");
    shape.kv_heads = to_int(d.kv_heads, "kv_heads");
    shape.q_len = to_int(d.q_len, "q_len");
    shape.kv_len = to_int(d.kv_len, "kv_len");
    shape.head_dim = to_int(d.head_dim, "head_dim");
    shape.kv_capacity = to_int(d.kv_capacity, "kv_capacity");
    attention::Options options;
    options.causal = s.causal;
    options.scale = static_cast<float>(s.scale);
    options.key_mask = s.key_mask;
    return attention::make_dims(shape, options);
  }

  Device device_;
  Buffer<std::byte> workspace_{};
  bool deterministic_ = false;
};

}  // namespace rlxf::cuda
