#pragma once
// Fused scaled-dot-product attention (SDPA) through cuDNN 9's backend graph API: the reference
// the hand-written FlashAttention kernels are measured against. Host C++ over cudnn.h (link
// cudnn and CUDA::cudart, or rlxf::cuda); the header-only cudnn-frontend is not used, every
// graph is built here from cudnnBackendCreateDescriptor / SetAttribute / Finalize.
//
// Layouts (row-major, contiguous):
//   Q, O, dQ, dO  [batch, heads, seq_q,  head_dim]   f16 or bf16
//   K, V, dK, dV  [batch, heads, seq_kv, head_dim]   same type
//   stats         [batch, heads, seq_q] f32: L_i = max_j S_ij + log sum_j exp(S_ij - max_j S_ij),
//                 the log-sum-exp of row i of the scaled, masked scores (FlashAttention-2's L)
//   seq_len_q, seq_len_kv  [batch] int32, only with padding
// Forward:  S = scale Q K^T, masked; P = softmax_rows(S); O = P V; stats as above.
// Backward (from Q, K, V, O, dO, stats): P = exp(S - L); dV = P^T dO; dP = dO V^T;
//   D_i = sum_d dO_id O_id; dS = P * (dP - D); dQ = scale dS K; dK = scale dS^T Q.
// Products accumulate in f32; P and dS are rounded to the input type before the products that
// read them, as in FlashAttention-2. Masked scores become the lowest finite float.
// Masks: causal keeps key j for query i when j <= i (requires seq_q == seq_kv); padding keeps
// (i, j) when i < seq_len_q[b] and j < seq_len_kv[b]. Outputs at padded positions (query rows
// i >= seq_len_q[b] of O, stats and dQ; key rows j >= seq_len_kv[b] of dK and dV) are
// unspecified.
//
// What cuDNN 9.19 offers and what this file uses. The installed headers declare
// CUDNN_BACKEND_OPERATION_SDPA_FWD_DESCRIPTOR and _SDPA_BWD_DESCRIPTOR, but
//  - the native forward operation has no causal attribute in 9.19 (only Q, K, V, O, stats,
//    scale, a tile-level block mask, page tables and sequence lengths), and
//  - a graph holding the native backward operation fails to finalize in 9.19
//    (CUDNN_STATUS_BAD_PARAM from outputGraph.buildDAG(): the library has no fusion node for it).
// So both passes are composed from matmul, pointwise and reduction operations in the pattern
// cuDNN's fused-attention engines recognise (the "runtime fusion" SDPA engines, FlashAttention-2
// style: one kernel, no S or P in global memory). Checked on this project's GPU-less machines
// by planning for a described A100 and H100 (CudnnDeviceProperties below): cuDNN accepts both
// graphs, picks its fused SDPA engines and compiles their kernels with NVRTC; only loading the
// module needs a real GPU (tests/cuda/test_cuda_runtime.cpp, "deviceless"; a softmax built
// with a wrong operation is refused there with CUDNN_STATUS_NOT_SUPPORTED). Numerical results
// can only be checked on a GPU (the same test file compares with a naive attention).
//
// Requirements from cuDNN (checked by cuDNN when the plan is built, reported as rlxf::Error):
// sm_80 or newer, head_dim a multiple of 8, head_dim <= 256 forward and <= 128 backward on
// Ampere/Ada (<= 256 on Hopper).
#include <cudnn.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/device_buffer.hpp"
#include "rlxf/cuda/runtime.hpp"

namespace rlxf::cuda {

// Throws rlxf::Error unless `status` is CUDNN_STATUS_SUCCESS: "rlxf CUDA backend: <what> failed
// with CUDNN_STATUS_BAD_PARAM (2000): <cuDNN's last error message>".
inline void check(cudnnStatus_t status, std::string_view what) {
  if (status == CUDNN_STATUS_SUCCESS) return;
  char detail[2048] = {};
  cudnnGetLastErrorString(detail, sizeof detail);
  fail("rlxf CUDA backend: ", what, " failed with ", cudnnGetErrorString(status), " (",
       static_cast<int>(status), ")", detail[0] != '\0' ? ": " : "", detail);
}

// An owned cuDNN handle (cudnnCreate / cudnnDestroy) bound to the current device. Move-only.
// Without a usable GPU the constructor throws the "no usable GPU" error.
class CudnnHandle {
 public:
  CudnnHandle() {
    runtime_detail::require_any_device("cudnnCreate");
    check(cudnnCreate(&handle_), "cudnnCreate");
  }
  ~CudnnHandle() {
    if (handle_ != nullptr) (void)cudnnDestroy(handle_);
  }
  CudnnHandle(CudnnHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  CudnnHandle& operator=(CudnnHandle&& other) noexcept {
    if (this != &other) {
      if (handle_ != nullptr) (void)cudnnDestroy(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  CudnnHandle(const CudnnHandle&) = delete;
  CudnnHandle& operator=(const CudnnHandle&) = delete;

  cudnnHandle_t get() const noexcept { return handle_; }
  // Later executions through this handle are queued on `stream` (legacy default until then).
  void set_stream(const Stream& stream) { check(cudnnSetStream(handle_, stream.get()), "cudnnSetStream"); }

 private:
  cudnnHandle_t handle_ = nullptr;
};

// An owned cuDNN backend descriptor (cudnnBackendCreateDescriptor / DestroyDescriptor) with typed
// attribute setters. Move-only. Setters return *this so a descriptor is filled in one chain.
class CudnnDescriptor {
 public:
  explicit CudnnDescriptor(cudnnBackendDescriptorType_t type) : type_(type) {
    check(cudnnBackendCreateDescriptor(type, &desc_),
          rlxf::detail::concat("cudnnBackendCreateDescriptor(type ", static_cast<int>(type), ")"));
  }
  ~CudnnDescriptor() {
    if (desc_ != nullptr) (void)cudnnBackendDestroyDescriptor(desc_);
  }
  CudnnDescriptor(CudnnDescriptor&& other) noexcept
      : desc_(std::exchange(other.desc_, nullptr)), type_(other.type_) {}
  CudnnDescriptor& operator=(CudnnDescriptor&& other) noexcept {
    if (this != &other) {
      if (desc_ != nullptr) (void)cudnnBackendDestroyDescriptor(desc_);
      desc_ = std::exchange(other.desc_, nullptr);
      type_ = other.type_;
    }
    return *this;
  }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;

  cudnnBackendDescriptor_t get() const noexcept { return desc_; }
  cudnnBackendDescriptorType_t type() const noexcept { return type_; }

  // cudnnBackendSetAttribute with `count` values of `type` (the raw form).
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, cudnnBackendAttributeType_t type,
                       std::int64_t count, const void* values) {
    check(cudnnBackendSetAttribute(desc_, attr, type, count, values),
          rlxf::detail::concat("cudnnBackendSetAttribute(attribute ", static_cast<int>(attr),
                               " of descriptor type ", static_cast<int>(type_), ")"));
    return *this;
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, std::int64_t v) {
    return set(attr, CUDNN_TYPE_INT64, 1, &v);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, std::span<const std::int64_t> v) {
    return set(attr, CUDNN_TYPE_INT64, static_cast<std::int64_t>(v.size()), v.data());
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, bool v) {
    return set(attr, CUDNN_TYPE_BOOLEAN, 1, &v);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, cudnnDataType_t v) {
    return set(attr, CUDNN_TYPE_DATA_TYPE, 1, &v);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, cudnnPointwiseMode_t v) {
    return set(attr, CUDNN_TYPE_POINTWISE_MODE, 1, &v);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, cudnnReduceTensorOp_t v) {
    return set(attr, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &v);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, cudnnBackendHeurMode_t v) {
    return set(attr, CUDNN_TYPE_HEUR_MODE, 1, &v);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, cudnnHandle_t v) {
    return set(attr, CUDNN_TYPE_HANDLE, 1, &v);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, std::string_view text) {
    std::string s(text);  // cuDNN reads a NUL-terminated character array
    return set(attr, CUDNN_TYPE_CHAR, static_cast<std::int64_t>(s.size() + 1), s.c_str());
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, const CudnnDescriptor& v) {
    cudnnBackendDescriptor_t d = v.get();
    return set(attr, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &d);
  }
  CudnnDescriptor& set(cudnnBackendAttributeName_t attr, std::span<const cudnnBackendDescriptor_t> v) {
    return set(attr, CUDNN_TYPE_BACKEND_DESCRIPTOR, static_cast<std::int64_t>(v.size()), v.data());
  }

  // cudnnBackendFinalize; throws naming `what`.
  void finalize(std::string_view what) { check(cudnnBackendFinalize(desc_), what); }
  // cudnnBackendFinalize; returns the status (for callers that try alternatives).
  cudnnStatus_t try_finalize() { return cudnnBackendFinalize(desc_); }

  // A character attribute (a JSON representation), "" when cuDNN has none.
  std::string get_text(cudnnBackendAttributeName_t attr) const {
    std::int64_t n = 0;
    if (cudnnBackendGetAttribute(desc_, attr, CUDNN_TYPE_CHAR, 0, &n, nullptr) != CUDNN_STATUS_SUCCESS || n <= 0)
      return {};
    std::string s(static_cast<std::size_t>(n), '\0');
    check(cudnnBackendGetAttribute(desc_, attr, CUDNN_TYPE_CHAR, n, &n, s.data()), "cudnnBackendGetAttribute(text)");
    s.resize(s.find('\0') == std::string::npos ? s.size() : s.find('\0'));
    return s;
  }
  // An int64 attribute.
  std::int64_t get_int64(cudnnBackendAttributeName_t attr) const {
    std::int64_t v = 0, n = 0;
    check(cudnnBackendGetAttribute(desc_, attr, CUDNN_TYPE_INT64, 1, &n, &v), "cudnnBackendGetAttribute(int64)");
    return v;
  }

 private:
  cudnnBackendDescriptor_t desc_ = nullptr;
  cudnnBackendDescriptorType_t type_;
};

// A finalized cuDNN device-property descriptor: the GPU cuDNN's heuristics and plans are built
// for. From a handle (its device), or from a DeviceProperties filled by hand, which needs no GPU:
// cuDNN then plans for that GPU without one ("deviceless" planning, cuDNN >= 9.8).
class CudnnDeviceProperties {
 public:
  explicit CudnnDeviceProperties(const CudnnHandle& handle) : desc_(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR) {
    desc_.set(CUDNN_ATTR_DEVICEPROP_HANDLE, handle.get());
    desc_.finalize("cudnnBackendFinalize(device properties from a handle)");
  }
  explicit CudnnDeviceProperties(const DeviceProperties& p) : desc_(CUDNN_BACKEND_DEVICEPROP_DESCRIPTOR) {
    desc_.set(CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION, std::string_view(json_of(p)));
    desc_.finalize(rlxf::detail::concat("cudnnBackendFinalize(device properties of '", p.name, "')"));
  }
  const CudnnDescriptor& descriptor() const noexcept { return desc_; }
  // cuDNN's JSON form of the properties.
  std::string json() const { return desc_.get_text(CUDNN_ATTR_DEVICEPROP_JSON_REPRESENTATION); }

  // The JSON cuDNN 9.19 reads a device description from (every field is required).
  static std::string json_of(const DeviceProperties& p) {
    std::string name;
    for (const char c : p.name)
      if (c != '"' && c != '\\') name += c;
    return rlxf::detail::concat(
        "{\"cudaDeviceId\":", p.ordinal, ",\"deviceName\":\"", name, "\",\"deviceVer\":", p.sm() * 10,
        ",\"driverVer\":", p.driver_version, ",\"isTccDriver\":", p.tcc_driver ? 1 : 0,
        ",\"l2CacheSize\":", p.l2_cache_bytes, ",\"maxCtasPerSM\":", p.max_blocks_per_sm,
        ",\"maxRegistersPerSM\":", p.regs_per_sm, ",\"maxSharedMemoryPerBlock\":", p.smem_per_block,
        ",\"maxSharedMemoryPerBlockOptin\":", p.smem_per_block_optin,
        ",\"maxThreadsPerBlock\":", p.max_threads_per_block, ",\"maxThreadsPerSM\":", p.max_threads_per_sm,
        ",\"memClockRateKHz\":", p.mem_clock_khz, ",\"multiProcessorCount\":", p.sm_count,
        ",\"pciDeviceId\":", p.pci_device_id, ",\"regsPerBlock\":", p.regs_per_block,
        ",\"reservedSharedMemoryPerBlock\":", p.smem_reserved_per_block,
        ",\"smClockRateKHz\":", p.sm_clock_khz, ",\"supportCoopLaunch\":", p.cooperative_launch ? 1 : 0,
        ",\"totalGlobalMem\":", p.global_mem_bytes, ",\"warpSize\":", p.warp_size,
        ",\"maxGridSize\":[", p.max_grid_dim[0], ",", p.max_grid_dim[1], ",", p.max_grid_dim[2],
        "],\"maxBlockSize\":[", p.max_block_dim[0], ",", p.max_block_dim[1], ",", p.max_block_dim[2], "]}");
  }

 private:
  CudnnDescriptor desc_;
};

// One engine configuration the heuristics offered and what finalizing a plan from it gave.
struct CudnnEngineAttempt {
  std::int64_t engine = -1;    // cuDNN's global engine index
  cudnnStatus_t status = CUDNN_STATUS_SUCCESS;
  std::string reason;          // cuDNN's last error message when status is not SUCCESS
};

// An execution plan for a finalized operation graph: the heuristics (mode A, then FALLBACK) rank
// engine configurations, and the first one that finalizes wins. Built for the device of a handle
// (executable) or for a described device (deviceless: cuDNN checks the graph, picks engines and
// compiles their kernels, but loading them needs the driver and a GPU, so such a plan is only
// good for its JSON or as a support check). Move-only.
class CudnnPlan {
 public:
  // Throws rlxf::Error listing every engine tried when none builds a plan.
  CudnnPlan(const CudnnDescriptor& graph, const CudnnHandle& handle) {
    // The heuristics rank engines for the handle's device; the plan is bound to the handle.
    const CudnnDeviceProperties device(handle);
    build(graph, &handle, &device, -1);
    require_ok();
  }
  CudnnPlan(const CudnnDescriptor& graph, const CudnnDeviceProperties& target) {
    build(graph, nullptr, &target, -1);
    require_ok();
  }
  // Never throws for lack of an engine: tries at most `max_attempts` configurations (all when
  // negative) and records what each gave; ok() says whether one finalized.
  static CudnnPlan attempt(const CudnnDescriptor& graph, const CudnnDeviceProperties& target,
                           int max_attempts = -1) {
    CudnnPlan plan;
    plan.build(graph, nullptr, &target, max_attempts);
    return plan;
  }

  bool ok() const noexcept { return plan_.has_value(); }
  // Configurations tried, in order; when ok() the last one is the plan's.
  const std::vector<CudnnEngineAttempt>& attempts() const noexcept { return attempts_; }
  // What the heuristics said when a mode offered no configuration ("" otherwise).
  const std::string& heuristics_notes() const noexcept { return notes_; }
  std::int64_t engine() const {
    (void)descriptor();  // throws when there is no plan
    return attempts_.back().engine;
  }
  std::int64_t workspace_bytes() const { return descriptor().get_int64(CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE); }
  // The serialized plan.
  std::string json() const { return descriptor().get_text(CUDNN_ATTR_EXECUTION_PLAN_JSON_REPRESENTATION); }
  const CudnnDescriptor& descriptor() const {
    if (!plan_) fail("rlxf CUDA backend: CudnnPlan: no engine built a plan for this graph");
    return *plan_;
  }

  // Runs the plan on the handle's stream: tensor uids[i] lives at pointers[i] (device pointers,
  // or host pointers for by-value scalars); `workspace` holds workspace_bytes() bytes.
  void execute(const CudnnHandle& handle, std::span<const std::int64_t> uids,
               std::span<void* const> pointers, void* workspace) const {
    if (uids.size() != pointers.size())
      fail("rlxf CUDA backend: CudnnPlan::execute: ", uids.size(), " uids but ", pointers.size(), " pointers");
    CudnnDescriptor pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
    pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, uids)
        .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR,
             static_cast<std::int64_t>(pointers.size()), pointers.data())
        .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &workspace);
    pack.finalize("cudnnBackendFinalize(variant pack)");
    check(cudnnBackendExecute(handle.get(), descriptor().get(), pack.get()), "cudnnBackendExecute");
  }

 private:
  CudnnPlan() = default;

  void require_ok() const {
    if (ok()) return;
    std::string tried;
    for (const auto& a : attempts_)
      tried += rlxf::detail::concat("\n  engine ", a.engine, ": ", cudnnGetErrorString(a.status), ": ", a.reason);
    fail("rlxf CUDA backend: cuDNN has no engine that builds a plan for this graph", notes_, tried);
  }

  static std::string last_cudnn_error() {
    char why[1024] = {};
    cudnnGetLastErrorString(why, sizeof why);
    return why;
  }

  // Heuristics for `target`; each plan bound to `handle` when given (executable), else to
  // `target` (deviceless).
  void build(const CudnnDescriptor& graph, const CudnnHandle* handle, const CudnnDeviceProperties* target,
             int max_attempts) {
    for (const cudnnBackendHeurMode_t mode : {CUDNN_HEUR_MODE_A, CUDNN_HEUR_MODE_FALLBACK}) {
      CudnnDescriptor heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
      heur.set(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph)
          .set(CUDNN_ATTR_ENGINEHEUR_MODE, mode)
          .set(CUDNN_ATTR_ENGINEHEUR_DEVICEPROP, target->descriptor());
      heur.finalize("cudnnBackendFinalize(engine heuristics)");
      std::int64_t count = 0;
      check(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                     0, &count, nullptr),
            "cudnnBackendGetAttribute(heuristic result count)");
      const char* mode_name = mode == CUDNN_HEUR_MODE_A ? "A" : "FALLBACK";
      if (count == 0) {
        notes_ += rlxf::detail::concat("\n  heuristics mode ", mode_name, " offered no engine: ", last_cudnn_error());
        continue;
      }
      std::vector<CudnnDescriptor> configs;
      std::vector<cudnnBackendDescriptor_t> raw;
      for (std::int64_t i = 0; i < count; ++i) {
        configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
        raw.push_back(configs.back().get());
      }
      std::int64_t got = 0;
      check(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
                                     count, &got, raw.data()),
            "cudnnBackendGetAttribute(heuristic results)");
      // The results are support-checked when read: `got` may be smaller than `count`.
      if (got == 0)
        notes_ += rlxf::detail::concat("\n  heuristics mode ", mode_name, " ranked ", count,
                                       " configurations but none passed cuDNN's support checks: ", last_cudnn_error());
      for (std::int64_t i = 0; i < got; ++i) {
        if (max_attempts >= 0 && attempts_.size() >= static_cast<std::size_t>(max_attempts)) return;
        const CudnnDescriptor& config = configs[static_cast<std::size_t>(i)];
        CudnnEngineAttempt attempt;
        attempt.engine = engine_index(config);
        CudnnDescriptor plan(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
        plan.set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, config);
        if (handle != nullptr) plan.set(CUDNN_ATTR_EXECUTION_PLAN_HANDLE, handle->get());
        else plan.set(CUDNN_ATTR_EXECUTION_PLAN_DEVICEPROP, target->descriptor());
        attempt.status = plan.try_finalize();
        if (attempt.status != CUDNN_STATUS_SUCCESS) attempt.reason = last_cudnn_error();
        attempts_.push_back(std::move(attempt));
        if (attempts_.back().status == CUDNN_STATUS_SUCCESS) {
          plan_.emplace(std::move(plan));
          return;
        }
      }
    }
  }

  static std::int64_t engine_index(const CudnnDescriptor& config) {
    CudnnDescriptor engine(CUDNN_BACKEND_ENGINE_DESCRIPTOR);
    cudnnBackendDescriptor_t raw = engine.get();
    std::int64_t n = 0, index = -1;
    if (cudnnBackendGetAttribute(config.get(), CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n,
                                 &raw) == CUDNN_STATUS_SUCCESS)
      (void)cudnnBackendGetAttribute(raw, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index);
    return index;
  }

  std::vector<CudnnEngineAttempt> attempts_;
  std::string notes_;
  std::optional<CudnnDescriptor> plan_;
};

// ---- SDPA ----

// Problem size of one attention call (layouts in the header comment).
struct SdpaShape {
  std::int64_t batch = 1;
  std::int64_t heads = 1;
  std::int64_t seq_q = 0;
  std::int64_t seq_kv = 0;
  std::int64_t head_dim = 0;
};

struct SdpaOptions {
  bool causal = false;  // key j visible to query i only when j <= i; needs seq_q == seq_kv
  bool padded = false;  // per-sequence lengths seq_len_q[b], seq_len_kv[b] (device int32)
  float scale = 0.0f;   // softmax scale; 0 means 1 / sqrt(head_dim)
};

namespace cudnn_detail {
template <class T> struct cudnn_type;
template <> struct cudnn_type<f16> { static constexpr cudnnDataType_t value = CUDNN_DATA_HALF; };
template <> struct cudnn_type<bf16> { static constexpr cudnnDataType_t value = CUDNN_DATA_BFLOAT16; };

// Unique ids of the tensors a caller binds to memory (the virtual ones get ids from 1000 up).
enum SdpaUid : std::int64_t {
  uid_q = 1,           // Q as the left operand of S = Q K^T
  uid_k_t = 2,         // K viewed as K^T [b, h, d, s_kv]
  uid_v = 3,           // V [b, h, s_kv, d] (forward: right operand of O = P V)
  uid_o = 4,
  uid_stats = 5,
  uid_scale = 6,       // by value, f32
  uid_seq_len_q = 7,
  uid_seq_len_kv = 8,
  uid_mask_fill = 9,   // by value, f32: the score given to masked positions
  uid_d_o = 10,
  uid_d_q = 11,
  uid_d_k = 12,
  uid_d_v = 13,
  uid_v_t = 14,        // V viewed as V^T [b, h, d, s_kv] (backward: dP = dO V^T)
  uid_k = 15,          // K [b, h, s_kv, d] as the right operand of dQ = dS K
};

// Builds a cuDNN operation graph: owns every tensor and operation descriptor (they must outlive
// the graph) and hands out uids for virtual tensors.
class GraphBuilder {
 public:
  using Dims = std::vector<std::int64_t>;

  // A finalized tensor descriptor; strides default to contiguous row-major.
  cudnnBackendDescriptor_t tensor(std::int64_t uid, const Dims& dims, cudnnDataType_t type,
                                  bool is_virtual = false, const Dims& strides = {}, bool by_value = false) {
    const Dims s = strides.empty() ? contiguous(dims) : strides;
    CudnnDescriptor d(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    d.set(CUDNN_ATTR_TENSOR_UNIQUE_ID, uid)
        .set(CUDNN_ATTR_TENSOR_DATA_TYPE, type)
        .set(CUDNN_ATTR_TENSOR_DIMENSIONS, std::span<const std::int64_t>(dims))
        .set(CUDNN_ATTR_TENSOR_STRIDES, std::span<const std::int64_t>(s))
        .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, std::int64_t{16});
    if (is_virtual) d.set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, true);
    if (by_value) d.set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, true);
    d.finalize(rlxf::detail::concat("cudnnBackendFinalize(tensor ", uid, ")"));
    return keep(std::move(d));
  }
  // An intermediate tensor that never reaches memory.
  cudnnBackendDescriptor_t virtual_tensor(const Dims& dims, cudnnDataType_t type, const Dims& strides = {}) {
    return tensor(next_virtual_uid_++, dims, type, true, strides);
  }
  // A by-value f32 scalar [1, 1, 1, 1] (its variant-pack pointer is a host pointer).
  cudnnBackendDescriptor_t scalar(std::int64_t uid) {
    return tensor(uid, {1, 1, 1, 1}, CUDNN_DATA_FLOAT, false, {1, 1, 1, 1}, true);
  }

  // c = a b over the last two dimensions (batched over the others), f32 accumulation.
  void matmul(cudnnBackendDescriptor_t a, cudnnBackendDescriptor_t b, cudnnBackendDescriptor_t c) {
    CudnnDescriptor desc(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    desc.set(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_DATA_FLOAT).finalize("cudnnBackendFinalize(matmul)");
    CudnnDescriptor op(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    op.set(CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a)
        .set(CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b)
        .set(CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c)
        .set(CUDNN_ATTR_OPERATION_MATMUL_DESC, desc);
    keep(std::move(desc));
    add_op(std::move(op), "matmul");
  }

  // y = mode(x[, b][, t]) elementwise with broadcasting; `axis` for GEN_INDEX; comparisons and
  // logical operations compute in BOOLEAN, everything else in f32.
  void pointwise(cudnnPointwiseMode_t mode, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t b,
                 cudnnBackendDescriptor_t y, cudnnBackendDescriptor_t t = nullptr, std::int64_t axis = -1) {
    const bool logical = mode == CUDNN_POINTWISE_CMP_GE || mode == CUDNN_POINTWISE_CMP_LT ||
                         mode == CUDNN_POINTWISE_LOGICAL_AND;
    CudnnDescriptor desc(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    desc.set(CUDNN_ATTR_POINTWISE_MODE, mode)
        .set(CUDNN_ATTR_POINTWISE_MATH_PREC, logical ? CUDNN_DATA_BOOLEAN : CUDNN_DATA_FLOAT);
    if (axis >= 0) desc.set(CUDNN_ATTR_POINTWISE_AXIS, axis);
    desc.finalize("cudnnBackendFinalize(pointwise)");
    CudnnDescriptor op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    op.set(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, desc)
        .set(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x);
    if (b != nullptr) op.set(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b);
    if (t != nullptr) op.set(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t);
    op.set(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    keep(std::move(desc));
    add_op(std::move(op), "pointwise");
  }

  // y = reduce(x) over the dimensions where y has extent 1, in f32.
  void reduction(cudnnReduceTensorOp_t reduce, cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    CudnnDescriptor desc(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    desc.set(CUDNN_ATTR_REDUCTION_OPERATOR, reduce)
        .set(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_DATA_FLOAT)
        .finalize("cudnnBackendFinalize(reduction)");
    CudnnDescriptor op(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    op.set(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x)
        .set(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y)
        .set(CUDNN_ATTR_OPERATION_REDUCTION_DESC, desc);
    keep(std::move(desc));
    add_op(std::move(op), "reduction");
  }

  // y = x viewed with y's dimensions and strides (a transposition when they are permuted),
  // converted to y's data type.
  void reshape(cudnnBackendDescriptor_t x, cudnnBackendDescriptor_t y) {
    CudnnDescriptor op(CUDNN_BACKEND_OPERATION_RESHAPE_DESCRIPTOR);
    op.set(CUDNN_ATTR_OPERATION_RESHAPE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x)
        .set(CUDNN_ATTR_OPERATION_RESHAPE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y);
    add_op(std::move(op), "reshape");
  }

  // The finalized operation graph of every operation added so far.
  CudnnDescriptor finish() {
    CudnnDescriptor graph(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    graph.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, std::span<const cudnnBackendDescriptor_t>(ops_));
    graph.finalize("cudnnBackendFinalize(operation graph)");
    return graph;
  }

  static Dims contiguous(const Dims& dims) {
    Dims s(dims.size());
    std::int64_t stride = 1;
    for (std::size_t i = dims.size(); i-- > 0;) {
      s[i] = stride;
      stride *= dims[i];
    }
    return s;
  }

 private:
  cudnnBackendDescriptor_t keep(CudnnDescriptor&& d) {
    owned_.push_back(std::move(d));
    return owned_.back().get();
  }
  void add_op(CudnnDescriptor&& op, const char* what) {
    op.finalize(rlxf::detail::concat("cudnnBackendFinalize(", what, " operation)"));
    ops_.push_back(keep(std::move(op)));
  }

  std::deque<CudnnDescriptor> owned_;
  std::vector<cudnnBackendDescriptor_t> ops_;
  std::int64_t next_virtual_uid_ = 1000;
};

inline void check_sdpa_config(const SdpaShape& s, const SdpaOptions& o, const char* who) {
  if (s.batch <= 0 || s.heads <= 0 || s.seq_q <= 0 || s.seq_kv <= 0 || s.head_dim <= 0)
    fail("rlxf CUDA backend: ", who, ": every dimension must be positive (batch ", s.batch, ", heads ", s.heads,
         ", seq_q ", s.seq_q, ", seq_kv ", s.seq_kv, ", head_dim ", s.head_dim, ")");
  if (o.causal && s.seq_q != s.seq_kv)
    fail("rlxf CUDA backend: ", who, ": the causal mask needs seq_q == seq_kv (got ", s.seq_q, " and ", s.seq_kv, ")");
  if (!(o.scale >= 0.0f) || !std::isfinite(o.scale))
    fail("rlxf CUDA backend: ", who, ": the scale must be finite and >= 0 (0 means 1/sqrt(head_dim)), got ", o.scale);
}

// Every tensor is declared 16-byte aligned (cudaMalloc gives 256).
inline void require_aligned(const void* p, const char* name, const char* who) {
  if (p == nullptr) fail("rlxf CUDA backend: ", who, ": ", name, " is null");
  if (reinterpret_cast<std::uintptr_t>(p) % 16 != 0)
    fail("rlxf CUDA backend: ", who, ": ", name, " is not 16-byte aligned");
}

inline float sdpa_scale(const SdpaShape& s, const SdpaOptions& o) {
  return o.scale > 0.0f ? o.scale : 1.0f / std::sqrt(static_cast<float>(s.head_dim));
}

// The masked, scaled scores S = mask(scale Q K^T) [b, h, s_q, s_kv] f32 (virtual), from the
// tensors q (uid_q) and scale (uid_scale) the caller made; shared by
// both passes: padding keeps (i, j) with i < seq_len_q[b] and j < seq_len_kv[b], causal keeps
// j <= i; masked scores become the by-value fill (the lowest finite float).
inline cudnnBackendDescriptor_t sdpa_scores(GraphBuilder& g, const SdpaShape& s, const SdpaOptions& o,
                                            cudnnDataType_t io, cudnnBackendDescriptor_t q,
                                            cudnnBackendDescriptor_t scale) {
  const std::int64_t b = s.batch, h = s.heads, sq = s.seq_q, skv = s.seq_kv, d = s.head_dim;
  const GraphBuilder::Dims sdims{b, h, sq, skv};
  const auto k_t = g.tensor(uid_k_t, {b, h, d, skv}, io, false, {h * skv * d, skv * d, 1, d});
  const auto raw = g.virtual_tensor(sdims, CUDNN_DATA_FLOAT);
  g.matmul(q, k_t, raw);
  auto scores = g.virtual_tensor(sdims, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_MUL, raw, scale, scores);
  if (!o.padded && !o.causal) return scores;

  const auto fill = g.scalar(uid_mask_fill);
  const auto apply = [&](cudnnBackendDescriptor_t keep_mask) {
    const auto masked = g.virtual_tensor(sdims, CUDNN_DATA_FLOAT);
    g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, scores, fill, masked, keep_mask);  // keep ? S : fill
    scores = masked;
  };
  const auto index = [&](std::int64_t axis) {  // row (axis 2) or column (axis 3) of each score
    const auto idx = g.virtual_tensor(sdims, CUDNN_DATA_INT32);
    g.pointwise(CUDNN_POINTWISE_GEN_INDEX, scores, nullptr, idx, nullptr, axis);
    return idx;
  };
  if (o.padded) {
    const auto len_q = g.tensor(uid_seq_len_q, {b, 1, 1, 1}, CUDNN_DATA_INT32);
    const auto len_kv = g.tensor(uid_seq_len_kv, {b, 1, 1, 1}, CUDNN_DATA_INT32);
    const auto row = index(2), col = index(3);
    const auto row_ok = g.virtual_tensor(sdims, CUDNN_DATA_BOOLEAN);
    g.pointwise(CUDNN_POINTWISE_CMP_LT, row, len_q, row_ok);
    const auto col_ok = g.virtual_tensor(sdims, CUDNN_DATA_BOOLEAN);
    g.pointwise(CUDNN_POINTWISE_CMP_LT, col, len_kv, col_ok);
    const auto both = g.virtual_tensor(sdims, CUDNN_DATA_BOOLEAN);
    g.pointwise(CUDNN_POINTWISE_LOGICAL_AND, row_ok, col_ok, both);
    apply(both);
  }
  if (o.causal) {
    const auto row = index(2), col = index(3);
    const auto visible = g.virtual_tensor(sdims, CUDNN_DATA_BOOLEAN);
    g.pointwise(CUDNN_POINTWISE_CMP_GE, row, col, visible);
    apply(visible);
  }
  return scores;
}
}  // namespace cudnn_detail

// A finalized SDPA operation graph together with the tensor and operation descriptors it
// references. Building one needs no GPU (only cuDNN); plan it with CudnnPlan. Move-only.
class SdpaGraph {
 public:
  SdpaGraph(cudnn_detail::GraphBuilder&& builder, CudnnDescriptor&& graph)
      : builder_(std::move(builder)), graph_(std::move(graph)) {}
  const CudnnDescriptor& descriptor() const noexcept { return graph_; }

 private:
  cudnn_detail::GraphBuilder builder_;
  CudnnDescriptor graph_;
};

// The forward graph: Q, K, V -> O, stats (header comment).
template <class T>
SdpaGraph sdpa_forward_graph(const SdpaShape& s, const SdpaOptions& o) {
  static_assert(std::is_same_v<T, f16> || std::is_same_v<T, bf16>, "cuDNN SDPA takes rlxf::f16 or rlxf::bf16");
  cudnn_detail::check_sdpa_config(s, o, "sdpa_forward_graph");
  using namespace cudnn_detail;
  GraphBuilder g;
  const cudnnDataType_t io = cudnn_type<T>::value;
  const std::int64_t b = s.batch, h = s.heads, sq = s.seq_q, skv = s.seq_kv, d = s.head_dim;
  const auto scores = sdpa_scores(g, s, o, io, g.tensor(uid_q, {b, h, sq, d}, io), g.scalar(uid_scale));
  const GraphBuilder::Dims sdims{b, h, sq, skv}, rdims{b, h, sq, 1};
  // Softmax with the statistics: m = rowmax S; e = exp(S - m); z = rowsum e;
  // stats = m + log z; P = e / z.
  const auto m = g.virtual_tensor(rdims, CUDNN_DATA_FLOAT);
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, scores, m);
  const auto shifted = g.virtual_tensor(sdims, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_SUB, scores, m, shifted);
  const auto e = g.virtual_tensor(sdims, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_EXP, shifted, nullptr, e);
  const auto z = g.virtual_tensor(rdims, CUDNN_DATA_FLOAT);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, e, z);
  const auto log_z = g.virtual_tensor(rdims, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_LOG, z, nullptr, log_z);
  const auto stats = g.tensor(uid_stats, rdims, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_ADD, m, log_z, stats);
  const auto p = g.virtual_tensor(sdims, io);  // P in the input type for the P V product
  g.pointwise(CUDNN_POINTWISE_DIV, e, z, p);
  const auto v = g.tensor(uid_v, {b, h, skv, d}, io);
  const auto out = g.tensor(uid_o, {b, h, sq, d}, io);
  g.matmul(p, v, out);
  CudnnDescriptor graph = g.finish();
  return SdpaGraph(std::move(g), std::move(graph));
}

// The backward graph: Q, K, V, O, dO, stats -> dQ, dK, dV (header comment).
template <class T>
SdpaGraph sdpa_backward_graph(const SdpaShape& s, const SdpaOptions& o) {
  static_assert(std::is_same_v<T, f16> || std::is_same_v<T, bf16>, "cuDNN SDPA takes rlxf::f16 or rlxf::bf16");
  cudnn_detail::check_sdpa_config(s, o, "sdpa_backward_graph");
  using namespace cudnn_detail;
  GraphBuilder g;
  const cudnnDataType_t io = cudnn_type<T>::value;
  const std::int64_t b = s.batch, h = s.heads, sq = s.seq_q, skv = s.seq_kv, d = s.head_dim;
  const GraphBuilder::Dims sdims{b, h, sq, skv}, rdims{b, h, sq, 1}, qdims{b, h, sq, d}, kdims{b, h, skv, d};
  // A [b, h, s_kv, s_q] view of a [b, h, s_q, s_kv] matrix: its transpose, no copy.
  const GraphBuilder::Dims tdims{b, h, skv, sq}, tstrides{h * sq * skv, sq * skv, 1, skv};
  const auto q = g.tensor(uid_q, qdims, io);  // both S = Q K^T and dK = dS^T Q read it
  const auto scale = g.scalar(uid_scale);
  const auto scores = sdpa_scores(g, s, o, io, q, scale);
  // P = exp(S - L), recomputed from the forward statistics.
  const auto stats = g.tensor(uid_stats, rdims, CUDNN_DATA_FLOAT);
  const auto shifted = g.virtual_tensor(sdims, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_SUB, scores, stats, shifted);
  const auto p = g.virtual_tensor(sdims, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_EXP, shifted, nullptr, p);
  // dV = P^T dO (P^T in the input type).
  const auto d_o = g.tensor(uid_d_o, qdims, io);
  const auto p_t = g.virtual_tensor(tdims, io, tstrides);
  g.reshape(p, p_t);
  g.matmul(p_t, d_o, g.tensor(uid_d_v, kdims, io));
  // dP = dO V^T.
  const auto v_t = g.tensor(uid_v_t, {b, h, d, skv}, io, false, {h * skv * d, skv * d, 1, d});
  const auto d_p = g.virtual_tensor(sdims, CUDNN_DATA_FLOAT);
  g.matmul(d_o, v_t, d_p);
  // D = rowsum(dO * O).
  const auto out = g.tensor(uid_o, qdims, io);
  const auto d_o_times_o = g.virtual_tensor(qdims, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_MUL, d_o, out, d_o_times_o);
  const auto row_dot = g.virtual_tensor(rdims, CUDNN_DATA_FLOAT);
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, d_o_times_o, row_dot);
  // dS = scale P (dP - D), in the input type for the two products that follow.
  const auto centred = g.virtual_tensor(sdims, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_SUB, d_p, row_dot, centred);
  const auto d_s_unscaled = g.virtual_tensor(sdims, CUDNN_DATA_FLOAT);
  g.pointwise(CUDNN_POINTWISE_MUL, p, centred, d_s_unscaled);
  const auto d_s = g.virtual_tensor(sdims, io);
  g.pointwise(CUDNN_POINTWISE_MUL, d_s_unscaled, scale, d_s);
  // dQ = dS K.
  g.matmul(d_s, g.tensor(uid_k, kdims, io), g.tensor(uid_d_q, qdims, io));
  // dK = dS^T Q.
  const auto d_s_t = g.virtual_tensor(tdims, io, tstrides);
  g.reshape(d_s, d_s_t);
  g.matmul(d_s_t, q, g.tensor(uid_d_k, kdims, io));
  CudnnDescriptor graph = g.finish();
  return SdpaGraph(std::move(g), std::move(graph));
}

// cuDNN fused attention forward for one shape and set of options: the graph and an executable
// plan for the handle's device, built once in the constructor (for a new shape build a new
// object), and a workspace. T is rlxf::f16 or rlxf::bf16.
template <class T>
class SdpaForward {
 public:
  SdpaForward(const CudnnHandle& handle, const SdpaShape& shape, const SdpaOptions& options = {})
      : shape_(shape), options_(options), scale_(cudnn_detail::sdpa_scale(shape, options)),
        graph_(sdpa_forward_graph<T>(shape, options)), plan_(graph_.descriptor(), handle),
        workspace_(static_cast<std::size_t>(plan_.workspace_bytes())) {}

  const SdpaShape& shape() const noexcept { return shape_; }
  const CudnnPlan& plan() const noexcept { return plan_; }

  // O and stats from Q, K, V (device pointers, layouts in the header comment). seq_len_q and
  // seq_len_kv are device int32 arrays of `batch` lengths, required with options.padded and
  // ignored otherwise. Asynchronous on the handle's stream.
  void operator()(const CudnnHandle& handle, const T* q, const T* k, const T* v, T* o, float* stats,
                  const std::int32_t* seq_len_q = nullptr, const std::int32_t* seq_len_kv = nullptr) {
    using namespace cudnn_detail;
    const char* who = "SdpaForward";
    require_aligned(q, "q", who), require_aligned(k, "k", who), require_aligned(v, "v", who);
    require_aligned(o, "o", who), require_aligned(stats, "stats", who);
    std::vector<std::int64_t> uids{uid_q, uid_k_t, uid_v, uid_o, uid_stats, uid_scale};
    std::vector<void*> ptrs{const_cast<T*>(q), const_cast<T*>(k), const_cast<T*>(v), o, stats, &scale_};
    bind_masks(uids, ptrs, seq_len_q, seq_len_kv);
    plan_.execute(handle, uids, ptrs, workspace_.data());
  }

 private:
  void bind_masks(std::vector<std::int64_t>& uids, std::vector<void*>& ptrs, const std::int32_t* len_q,
                  const std::int32_t* len_kv) {
    if (options_.padded) {
      cudnn_detail::require_aligned(len_q, "seq_len_q (needed by options.padded)", "SdpaForward");
      cudnn_detail::require_aligned(len_kv, "seq_len_kv (needed by options.padded)", "SdpaForward");
      uids.insert(uids.end(), {cudnn_detail::uid_seq_len_q, cudnn_detail::uid_seq_len_kv});
      ptrs.insert(ptrs.end(), {const_cast<std::int32_t*>(len_q), const_cast<std::int32_t*>(len_kv)});
    }
    if (options_.padded || options_.causal) {
      uids.push_back(cudnn_detail::uid_mask_fill);
      ptrs.push_back(&mask_fill_);
    }
  }

  SdpaShape shape_;
  SdpaOptions options_;
  float scale_;                                            // by-value scalars: host memory that
  float mask_fill_ = std::numeric_limits<float>::lowest();  // must outlive each execution
  SdpaGraph graph_;
  CudnnPlan plan_;
  DeviceBuffer<std::byte> workspace_;
};

// cuDNN fused attention backward, as SdpaForward.
template <class T>
class SdpaBackward {
 public:
  SdpaBackward(const CudnnHandle& handle, const SdpaShape& shape, const SdpaOptions& options = {})
      : shape_(shape), options_(options), scale_(cudnn_detail::sdpa_scale(shape, options)),
        graph_(sdpa_backward_graph<T>(shape, options)), plan_(graph_.descriptor(), handle),
        workspace_(static_cast<std::size_t>(plan_.workspace_bytes())) {}

  const SdpaShape& shape() const noexcept { return shape_; }
  const CudnnPlan& plan() const noexcept { return plan_; }

  // dQ, dK, dV from Q, K, V, the forward's O and stats, and dO (device pointers, layouts in the
  // header comment); sequence lengths as in SdpaForward. dQ, dK, dV are overwritten.
  // Asynchronous on the handle's stream.
  void operator()(const CudnnHandle& handle, const T* q, const T* k, const T* v, const T* o,
                  const T* d_o, const float* stats, T* d_q, T* d_k, T* d_v,
                  const std::int32_t* seq_len_q = nullptr, const std::int32_t* seq_len_kv = nullptr) {
    using namespace cudnn_detail;
    const char* who = "SdpaBackward";
    require_aligned(q, "q", who), require_aligned(k, "k", who), require_aligned(v, "v", who);
    require_aligned(o, "o", who), require_aligned(d_o, "d_o", who), require_aligned(stats, "stats", who);
    require_aligned(d_q, "d_q", who), require_aligned(d_k, "d_k", who), require_aligned(d_v, "d_v", who);
    auto in = [](const auto* p) { return const_cast<void*>(static_cast<const void*>(p)); };
    std::vector<std::int64_t> uids{uid_q, uid_k_t, uid_k, uid_v_t, uid_o, uid_d_o, uid_stats,
                                   uid_d_q, uid_d_k, uid_d_v, uid_scale};
    std::vector<void*> ptrs{in(q), in(k), in(k), in(v), in(o), in(d_o), in(stats), d_q, d_k, d_v, &scale_};
    if (options_.padded) {
      require_aligned(seq_len_q, "seq_len_q (needed by options.padded)", who);
      require_aligned(seq_len_kv, "seq_len_kv (needed by options.padded)", who);
      uids.insert(uids.end(), {uid_seq_len_q, uid_seq_len_kv});
      ptrs.insert(ptrs.end(), {in(seq_len_q), in(seq_len_kv)});
    }
    if (options_.padded || options_.causal) {
      uids.push_back(uid_mask_fill);
      ptrs.push_back(&mask_fill_);
    }
    plan_.execute(handle, uids, ptrs, workspace_.data());
  }

 private:
  SdpaShape shape_;
  SdpaOptions options_;
  float scale_;
  float mask_fill_ = std::numeric_limits<float>::lowest();
  SdpaGraph graph_;
  CudnnPlan plan_;
  DeviceBuffer<std::byte> workspace_;
};

}  // namespace rlxf::cuda
