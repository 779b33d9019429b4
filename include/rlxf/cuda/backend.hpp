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
// Memory planning: between begin_planned_step(key) and end_planned_step() (nn::PlannedStep),
// allocate_shared hands out slices of one arena as core/memory_plan.hpp's planner lays them
// out, so a training step of a shape seen before allocates nothing from the device.
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
#include <cmath>
#include <type_traits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/core/backend.hpp"
#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/memory_plan.hpp"
#include "rlxf/cuda/attention/attention.hpp"
#include "rlxf/cuda/elementwise/activations.hpp"
#include "rlxf/cuda/elementwise/add.hpp"
#include "rlxf/cuda/elementwise/adamw.hpp"
#include "rlxf/cuda/elementwise/cross_entropy.hpp"
#include "rlxf/cuda/elementwise/layernorm.hpp"
#include "rlxf/cuda/elementwise/rmsnorm.hpp"
#include "rlxf/cuda/elementwise/rope.hpp"
#include "rlxf/cuda/elementwise/tensor_ops.hpp"
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
  using accum_type = float;
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

  // n zero elements that stay allocated while the returned owner (or a copy of it) lives: a
  // buffer of their own, or, in a planned step, a slice of the step's arena.
  template <class T>
  std::pair<std::shared_ptr<void>, T*> allocate_shared(std::size_t n) {
    if (n == 0) return {nullptr, nullptr};
    const std::size_t bytes = n * sizeof(T);
    const MemoryPlanner::Grant g = planned_.planner->allocate(bytes);
    if (g.offset != MemoryPlanner::unplanned && planned_.arena && g.offset + bytes <= planned_.arena->size()) {
      T* p = reinterpret_cast<T*>(planned_.arena->data() + g.offset);
      device_.zero(p, bytes);
      return {std::make_shared<Lease<std::shared_ptr<Buffer<std::byte>>>>(planned_.planner, g.id, planned_.arena), p};
    }
    auto lease = std::make_shared<Lease<Buffer<T>>>(planned_.planner, g.id, allocate<T>(n));
    return {lease, lease->held.data()};
  }
  // A training step whose allocations are planned (see above); `key` names its shape.
  void begin_planned_step(std::uint64_t key) { planned_.planner->begin(key); }
  // `completed` false: an exception ended the step, which leaves no plan. Grows the arena to
  // the largest plan (the old one stays alive while slices of it do).
  void end_planned_step(bool completed) noexcept {
    planned_.planner->end(completed);
    const std::size_t need = planned_.planner->arena_bytes();
    if (need == 0 || (planned_.arena && planned_.arena->size() >= need)) return;
    try {
      planned_.arena = std::make_shared<Buffer<std::byte>>(device_.template allocate<std::byte>(need));
      planned_.planner->new_arena();
    } catch (...) {  // out of memory: the steps go on with allocations of their own
    }
  }
  const MemoryPlanner& memory_planner() const { return *planned_.planner; }
  // Bytes of the planned steps' arena (0 before the first plan).
  std::size_t planned_arena_bytes() const { return planned_.arena ? planned_.arena->size() : 0; }

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
  // Sub-range transfers: complete on return.
  template <class T>
  void copy_to_device(std::span<const T> host, T* dst) {
    device_.copy_bytes(dst, host.data(), host.size_bytes());
    device_.synchronize();
  }
  template <class T>
  void copy_to_host(const T* src, std::span<T> host) {
    device_.copy_bytes(host.data(), src, host.size_bytes());
    device_.synchronize();
  }
  template <class T>
  void copy(const T* src, T* dst, std::size_t n) {
    device_.copy_bytes(dst, src, n * sizeof(T));
  }
  template <class T>
  void zero(T* p, std::size_t n) {
    device_.zero(p, n * sizeof(T));
  }
  // f32 <-> bf16 (or a copy for one type): zero, then the Add kernel's one rounding of 0 + x.
  template <class From, class To>
  void cast(const From* src, To* dst, std::size_t n) {
    if constexpr (std::is_same_v<From, To>) {
      copy(src, dst, n);
    } else {
      zero(dst, n);
      add_into(src, dst, n);
    }
  }

  // ---- ops (the Backend concept's; bf16 storage, f32 arithmetic) ----

  void gemm(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, float alpha, const bf16* A,
            std::size_t lda, const bf16* B, std::size_t ldb, float beta, bf16* C, std::size_t ldc) {
    const GemmParams<bf16, bf16> p = gemm_params<bf16>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    dispatch_gemm(device_.launcher(), ta == Transpose::yes, tb == Transpose::yes, p, device_.sm_count());
  }
  void gemm_epilogue(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, float alpha,
                     const bf16* A, std::size_t lda, const bf16* B, std::size_t ldb, float beta, bf16* C,
                     std::size_t ldc, const float* bias, GemmEpilogue epilogue) {
    GemmParams<bf16, bf16> p = gemm_params<bf16>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    RLXF_REQUIRE(bias != nullptr || epilogue == GemmEpilogue::none,
                 "cuda::Backend::gemm_epilogue: the GELU epilogue comes after a bias; pass one");
    p.bias = bias;
    p.epilogue = bias == nullptr ? Epilogue::none : epilogue == GemmEpilogue::gelu_tanh ? Epilogue::bias_gelu
                                                                                         : Epilogue::bias;
    dispatch_gemm(device_.launcher(), ta == Transpose::yes, tb == Transpose::yes, p, device_.sm_count());
  }
  void gemm_batched(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, float alpha,
                    const bf16* A, std::size_t lda, std::size_t stride_a, const bf16* B, std::size_t ldb,
                    std::size_t stride_b, float beta, bf16* C, std::size_t ldc, std::size_t stride_c,
                    std::size_t batch) {
    if (batch == 0) return;
    GemmParams<bf16, bf16> p = gemm_params<bf16>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    p.batch = to_int(batch, "batch");
    p.stride_a = to_long(stride_a);
    p.stride_b = to_long(stride_b);
    p.stride_c = to_long(stride_c);
    dispatch_gemm(device_.launcher(), ta == Transpose::yes, tb == Transpose::yes, p, device_.sm_count());
  }
  // C (f32) += alpha op(A) op(B): the weight gradients, accumulated without a bf16 rounding.
  void gemm_accumulate(Transpose ta, Transpose tb, std::size_t M, std::size_t N, std::size_t K, float alpha,
                       const bf16* A, std::size_t lda, const bf16* B, std::size_t ldb, float* C, std::size_t ldc) {
    const GemmParams<bf16, float> p = gemm_params<float>(M, N, K, alpha, A, lda, B, ldb, 1.0f, C, ldc);
    dispatch_gemm(device_.launcher(), ta == Transpose::yes, tb == Transpose::yes, p, device_.sm_count());
  }

  // ---- embeddings, bias, residuals, heads, reductions ----

  void embedding_forward(const std::int32_t* ids, const bf16* table, bf16* out, std::size_t tokens, std::size_t dim,
                         bool accumulate) {
    // The table's row count is not passed: ids were checked on the host, so any row is valid.
    cuda::gather(GatherParams<bf16>{ids, table, out, to_long(tokens), to_long(dim), LONG_MAX, accumulate},
                 device_.launcher());
  }
  void embedding_backward(const std::int32_t* ids, const bf16* dout, float* dtable, std::size_t tokens,
                          std::size_t dim) {
    cuda::scatter_add_rows(ScatterAddRowsParams<bf16>{ids, dout, dtable, to_long(tokens), to_long(dim), LONG_MAX},
                           device_.launcher());
  }
  void bias_backward(const bf16* dy, float* dbias, std::size_t rows, std::size_t cols) {
    cuda::scatter_add_rows(ScatterAddRowsParams<bf16>{nullptr, dy, dbias, to_long(rows), to_long(cols), 1},
                           device_.launcher());
  }
  void add(const bf16* x, bf16* y, std::size_t n) { add_into(x, y, n); }
  void scale(float* x, std::size_t n, double s) {
    cuda::scale(ScaleParams{x, to_long(n), static_cast<float>(s)}, device_.launcher());
  }
  // Waits for the queued work and returns the sum (SumOfSquares: the same bits every run).
  double sum_of_squares(const float* x, std::size_t n) {
    SumOfSquaresParams p;
    p.n = to_long(n);
    p.blocks = sum_of_squares_blocks(p.n);
    backend_detail::Carve carve;
    const std::size_t partial_at = carve.take<double>(static_cast<std::size_t>(p.blocks)),
                      out_at = carve.take<double>(1);
    std::byte* base = workspace(carve.bytes);
    p.x = x;
    p.partial = carve.at<double>(base, partial_at);
    p.out = carve.at<double>(base, out_at);
    cuda::sum_of_squares(p, device_.launcher());
    double total = 0;
    copy_to_host(p.out, std::span<double>(&total, 1));
    return total;
  }
  void split_heads(const bf16* x, bf16* y, std::size_t batch, std::size_t len, std::size_t heads,
                   std::size_t head_dim, std::size_t capacity, std::size_t offset) {
    cuda::permute_heads(PermuteHeadsParams<bf16>{x, y, to_long(batch), to_long(len), to_long(heads), to_long(head_dim),
                                                 to_long(capacity), to_long(offset), true},
                        device_.launcher());
  }
  void merge_heads(const bf16* x, bf16* y, std::size_t batch, std::size_t len, std::size_t heads,
                   std::size_t head_dim) {
    cuda::permute_heads(PermuteHeadsParams<bf16>{x, y, to_long(batch), to_long(len), to_long(heads), to_long(head_dim),
                                                 to_long(len), 0, false},
                        device_.launcher());
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
                         std::size_t N, std::size_t C, double eps) {
    LayerNormForwardParams<bf16> p;
    p.x = x;
    p.gamma = gamma;
    p.beta = beta;
    p.y = y;
    p.mean = mean;
    p.rstd = rstd;
    p.N = to_int(N, "N");
    p.C = to_int(C, "C");
    p.eps = static_cast<float>(eps);
    cuda::layernorm_forward(p, device_.launcher());
  }

  void layernorm_backward(const bf16* dy, const bf16* x, const bf16* gamma, const float* mean, const float* rstd,
                          bf16* dx, float* dgamma, float* dbeta, std::size_t N, std::size_t C) {
    LayerNormBackwardParams<bf16> p;
    p.N = to_int(N, "N");
    p.C = to_int(C, "C");
    RLXF_REQUIRE(dgamma != nullptr, "cuda::Backend::layernorm_backward: dgamma must not be null");
    if (p.N == 0) return;
    // f32 scratch: the kernel's per-block partial sums, reduced into dgamma and dbeta (the
    // kernel adds into them).
    float* partial = workspace_floats(static_cast<std::size_t>(layernorm_backward_workspace(p.N, p.C)));
    p.dy = dy;
    p.x = x;
    p.gamma = gamma;
    p.mean = mean;
    p.rstd = rstd;
    p.dx = dx;
    p.dgamma = dgamma;
    p.dbeta = dbeta;
    p.workspace = partial;
    p.accumulate = true;
    cuda::layernorm_backward(p, device_.launcher());
  }
  void rmsnorm_forward(const bf16* x, const bf16* gamma, bf16* y, float* rstd, std::size_t N, std::size_t C,
                       double eps) {
    RmsNormForwardParams<bf16> p;
    p.x = x;
    p.gamma = gamma;
    p.y = y;
    p.rstd = rstd;
    p.N = to_int(N, "N");
    p.C = to_int(C, "C");
    p.eps = static_cast<float>(eps);
    cuda::rmsnorm_forward(p, device_.launcher());
  }
  void rmsnorm_backward(const bf16* dy, const bf16* x, const bf16* gamma, const float* rstd, bf16* dx, float* dgamma,
                        std::size_t N, std::size_t C) {
    RmsNormBackwardParams<bf16> p;
    p.N = to_int(N, "N");
    p.C = to_int(C, "C");
    if (p.N == 0) return;
    p.dy = dy;
    p.x = x;
    p.gamma = gamma;
    p.rstd = rstd;
    p.dx = dx;
    p.dgamma = dgamma;
    p.workspace = workspace_floats(static_cast<std::size_t>(rmsnorm_backward_workspace(p.N, p.C)));
    p.accumulate = true;
    cuda::rmsnorm_backward(p, device_.launcher());
  }

  void gelu_forward(const bf16* x, bf16* y, std::size_t n, GeluForm form = GeluForm::tanh) {
    cuda::gelu_forward(GeluForwardParams<bf16>{x, y, to_long(n)}, form, device_.launcher());
  }
  void gelu_backward(const bf16* x, const bf16* dy, bf16* dx, std::size_t n, GeluForm form = GeluForm::tanh) {
    cuda::gelu_backward(GeluBackwardParams<bf16>{x, dy, dx, to_long(n), true}, form, device_.launcher());
  }
  void swiglu_forward(const bf16* gate, const bf16* up, bf16* y, std::size_t n) {
    SwiGluForwardParams<bf16> p;
    p.gate = gate;
    p.up = up;
    p.y = y;
    p.n = to_long(n);
    cuda::swiglu_forward(p, device_.launcher());
  }
  void swiglu_backward(const bf16* gate, const bf16* up, const bf16* dy, bf16* dgate, bf16* dup, std::size_t n) {
    SwiGluBackwardParams<bf16> p;
    p.gate = gate;
    p.up = up;
    p.dy = dy;
    p.dgate = dgate;
    p.dup = dup;
    p.n = to_long(n);
    p.accumulate = true;
    cuda::swiglu_backward(p, device_.launcher());
  }
  void tanh_forward(const bf16* x, bf16* y, std::size_t n) {
    TanhParams<bf16> p;
    p.x = x;
    p.out = y;
    p.n = to_long(n);
    tanh_activation<false>(p, device_.launcher());
  }
  void tanh_backward(const bf16* y, const bf16* dy, bf16* dx, std::size_t n) {
    TanhParams<bf16> p;
    p.x = y;
    p.dy = dy;
    p.out = dx;
    p.n = to_long(n);
    p.accumulate = true;
    tanh_activation<true>(p, device_.launcher());
  }
  // In place. The cos / sin tables (cuda/elementwise/rope.hpp) are built on the host once per
  // (head_dim, theta, max_positions) and kept on the device.
  void rope(bf16* x, const std::int32_t* positions, std::size_t tokens, std::size_t heads, std::size_t head_dim,
            double theta, std::size_t max_positions, bool inverse) {
    const int D = to_int(head_dim, "head_dim"), P = to_int(max_positions, "max_positions");
    // A table covers every request with its D and theta and at most its positions (row p is
    // position p's, whatever the table's length): it is rebuilt only to grow.
    if (!rope_cos_.size() || rope_key_.D != D || rope_key_.theta != theta || rope_key_.max_positions < P) {
      const RopeTables tables = rope_tables(D, P, theta);
      rope_cos_ = allocate<float>(tables.cos.size());
      rope_sin_ = allocate<float>(tables.sin.size());
      copy_to_device(std::span<const float>(tables.cos), rope_cos_.data());
      copy_to_device(std::span<const float>(tables.sin), rope_sin_.data());
      rope_key_ = {D, theta, P};
    }
    RopeParams<bf16> p;
    p.x = x;
    p.y = x;
    p.positions = positions;
    p.cos = rope_cos_.data();
    p.sin = rope_sin_.data();
    p.N = to_int(tokens, "tokens");
    p.H = to_int(heads, "heads");
    p.D = D;
    p.max_positions = P;
    p.inverse = inverse;
    cuda::rope(p, device_.launcher());
  }

  // ---- log-probabilities, optimizer ----

  void token_logprobs(const bf16* logits, const std::int32_t* targets, float* logp, float* lse, float* entropy,
                      std::size_t rows, std::size_t vocab, double temperature) {
    RLXF_REQUIRE(temperature > 0 && std::isfinite(temperature), "token_logprobs: temperature must be positive, got ",
                 temperature);
    CrossEntropyForwardParams<bf16> p;
    p.logits = logits;
    p.targets = targets;
    p.losses = logp;
    p.lse = lse;
    p.entropy = entropy;
    p.N = to_int(rows, "rows");
    p.vocab = to_int(vocab, "vocab");
    p.ignore_index = ignore_target;
    p.scale = static_cast<float>(1.0 / temperature);
    p.negate = true;
    cuda::cross_entropy_forward(p, device_.launcher());
  }
  void token_logprobs_backward(const bf16* logits, const std::int32_t* targets, const float* lse, const float* dlogp,
                               bf16* dlogits, std::size_t rows, std::size_t vocab, double temperature) {
    CrossEntropyBackwardParams<bf16> p;
    p.logits = logits;
    p.targets = targets;
    p.lse = lse;
    p.dlosses = dlogp;
    p.dlogits = dlogits;
    p.N = to_int(rows, "rows");
    p.vocab = to_int(vocab, "vocab");
    p.ignore_index = ignore_target;
    p.accumulate = true;
    p.scale = static_cast<float>(1.0 / temperature);
    p.grad_scale = static_cast<float>(-1.0 / temperature);
    cuda::cross_entropy_backward(p, device_.launcher());
  }
  void adamw(float* param, const float* grad, float* m, float* v, std::size_t n, const AdamWStep& s) {
    AdamWParams p;
    p.param = param;
    p.grad = grad;
    p.m = m;
    p.v = v;
    p.n = to_long(n);
    p.lr = static_cast<float>(s.lr);
    p.beta1 = static_cast<float>(s.beta1);
    p.beta2 = static_cast<float>(s.beta2);
    p.eps = static_cast<float>(s.eps);
    p.weight_decay = static_cast<float>(s.weight_decay);
    p.decayed = s.decayed >= n ? p.n : to_long(s.decayed);
    p.one_minus_beta1 = static_cast<float>(1 - s.beta1);
    p.one_minus_beta2 = static_cast<float>(1 - s.beta2);
    p.correction1 = static_cast<float>(s.correction1);
    p.correction2 = static_cast<float>(s.correction2);
    cuda::adamw_update(p, device_.launcher());
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

  float* workspace_floats(std::size_t n) { return reinterpret_cast<float*>(workspace(n * sizeof(float))); }

  template <class TX, class TY>
  void add_into(const TX* x, TY* y, std::size_t n) {
    cuda::add(AddParams<TX, TY>{x, y, to_long(n)}, device_.launcher());
  }
  template <class TOut>
  static GemmParams<bf16, TOut> gemm_params(std::size_t M, std::size_t N, std::size_t K, float alpha, const bf16* A,
                                            std::size_t lda, const bf16* B, std::size_t ldb, float beta, TOut* C,
                                            std::size_t ldc) {
    GemmParams<bf16, TOut> p;
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
    return p;
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

  // What keeps an allocate_shared grant's memory alive (`held`: the arena it is a slice of, or
  // a buffer of its own) and tells the planner when it is no longer used.
  template <class Held>
  struct Lease {
    std::shared_ptr<MemoryPlanner> planner;
    std::uint64_t id;
    Held held;
    Lease(std::shared_ptr<MemoryPlanner> p, std::uint64_t i, Held h) : planner(std::move(p)), id(i), held(std::move(h)) {}
    ~Lease() { planner->release(id); }
  };
  // The planner and its arena; a copy of a backend plans on its own.
  struct Planned {
    std::shared_ptr<MemoryPlanner> planner = std::make_shared<MemoryPlanner>();
    std::shared_ptr<Buffer<std::byte>> arena;
    Planned() = default;
    Planned(const Planned&) : Planned() {}
    Planned& operator=(const Planned&) {
      *this = Planned();
      return *this;
    }
    Planned(Planned&&) noexcept = default;
    Planned& operator=(Planned&&) noexcept = default;
  };

  struct RopeKey {
    int D = 0;
    double theta = 0;
    int max_positions = 0;
  };

  Device device_;
  Buffer<std::byte> workspace_{};
  Buffer<float> rope_cos_{}, rope_sin_{};
  RopeKey rope_key_{};
  bool deterministic_ = false;
  Planned planned_;
};

}  // namespace rlxf::cuda
