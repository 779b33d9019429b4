// The CUDA runtime layer and the NVIDIA reference backends (cuBLAS, cuBLASLt, cuDNN SDPA).
//
// Without a GPU (the project's machines): every entry point that needs a device throws an
// rlxf::Error saying "no usable GPU" with the runtime's error name, never crashes; host-side
// argument checks work; cuDNN builds the SDPA graphs and plans them for a described A100 and
// H100 (deviceless planning). Each test whose GPU part cannot run says so in a MESSAGE.
//
// With a GPU: cuBLAS and cuBLASLt GEMMs on small integer inputs must equal a host triple loop
// exactly (every product and sum is an integer below 2^8, exact in f32, f16 and bf16) for all
// transposition cases and types; cuDNN SDPA forward and backward are compared with a naive
// double-precision attention on the same rounded inputs, within a per-type tolerance.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/cublas_gemm.hpp"
#include "rlxf/cuda/cudnn_attention.hpp"
#include "rlxf/cuda/device_buffer.hpp"
#include "rlxf/cuda/runtime.hpp"
#include "../error_of.hpp"

using namespace rlxf;
using namespace rlxf::cuda;

namespace {

// The runtime's own name for why there is no device ("cudaErrorInsufficientDriver" here).
std::string no_device_error_name() {
  int n = 0;
  const cudaError_t code = cudaGetDeviceCount(&n);
  (void)cudaGetLastError();
  return code == cudaSuccess ? std::string("cudaSuccess") : std::string(cudaGetErrorName(code));
}

using rlxf::test::error_of;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

void note_gpu_part_skipped(const std::string& what) {
  MESSAGE("no usable GPU (", no_device_error_name(), "): the GPU part of this test (", what,
          ") was not run");
}

template <class T>
T cast(double v) {
  if constexpr (std::is_same_v<T, float>) return static_cast<float>(v);
  else return T::from_float(static_cast<float>(v));
}
template <class T>
double value(T v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else return static_cast<double>(v.to_float());
}
template <class T>
const char* type_name() {
  if constexpr (std::is_same_v<T, float>) return "f32";
  else if constexpr (std::is_same_v<T, f16>) return "f16";
  else return "bf16";
}

// A deterministic integer in [-2, 2].
double small_int(std::uint64_t seed, std::size_t i) {
  std::uint64_t x = seed * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull + 1;
  x ^= x >> 31;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 29;
  return static_cast<double>(static_cast<int>(x % 5) - 2);
}
// A deterministic value in [-1, 1).
double unit(std::uint64_t seed, std::size_t i) {
  std::uint64_t x = seed * 0x2545f4914f6cdd1dull + i * 0x9e3779b97f4a7c15ull + 7;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return static_cast<double>(x >> 11) / 4503599627370496.0 - 1.0;  // / 2^52
}

double gelu_tanh(double x) {
  const double u = std::sqrt(2.0 / 3.141592653589793) * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + std::tanh(u));
}

// Hand-filled descriptions of two GPUs this machine does not have (public specifications).
DeviceProperties a100() {
  DeviceProperties p;
  p.name = "NVIDIA A100-SXM4-40GB";
  p.sm_major = 8, p.sm_minor = 0, p.sm_count = 108;
  p.smem_per_block_optin = 166912, p.smem_per_sm = 167936, p.smem_reserved_per_block = 1024;
  p.global_mem_bytes = 42505273344ull, p.l2_cache_bytes = 41943040;
  p.sm_clock_khz = 1410000, p.mem_clock_khz = 1215000;
  p.cooperative_launch = true;
  p.driver_version = 13000;
  return p;
}
DeviceProperties h100() {
  DeviceProperties p = a100();
  p.name = "NVIDIA H100 80GB HBM3";
  p.sm_major = 9, p.sm_count = 132;
  p.smem_per_block_optin = 232448, p.smem_per_sm = 233472;
  p.global_mem_bytes = 85017624576ull, p.l2_cache_bytes = 52428800;
  p.sm_clock_khz = 1980000, p.mem_clock_khz = 2619000;
  return p;
}

}  // namespace

// ---- runtime ----

TEST_CASE("cuda runtime: require_device reports a missing GPU clearly") {
  if (device_count() == 0) {
    const std::string name = no_device_error_name();
    const std::string msg = error_of([] { (void)require_device(); });
    CHECK(contains(msg, "no usable GPU"));
    CHECK(contains(msg, name));
    CHECK(contains(msg, "cudaGetDeviceCount"));
    CHECK(contains(msg, "rlxf::cpu"));
    MESSAGE("require_device() says: ", msg);
    note_gpu_part_skipped("device properties of device 0");
    return;
  }
  const DeviceProperties p = require_device(0);
  CHECK(!p.name.empty());
  CHECK(p.sm_count > 0);
  CHECK(p.sm() >= 50);
  CHECK(p.smem_per_block_optin >= p.smem_per_block);
  CHECK(contains(error_of([] { (void)require_device(device_count()); }), "out of range"));
}

TEST_CASE("cuda runtime: check() names the call, the error and its description") {
  const std::string msg = error_of([] { check(cudaErrorInvalidValue, "cudaMemcpy(test)"); });
  CHECK(contains(msg, "cudaMemcpy(test)"));
  CHECK(contains(msg, "cudaErrorInvalidValue"));
  CHECK(contains(msg, cudaGetErrorString(cudaErrorInvalidValue)));
  CHECK_NOTHROW(check(cudaSuccess, "nothing"));
  const std::string blas = error_of([] { check(CUBLAS_STATUS_NOT_SUPPORTED, "cublasGemmEx"); });
  CHECK(contains(blas, "CUBLAS_STATUS_NOT_SUPPORTED"));
  const std::string dnn = error_of([] { check(CUDNN_STATUS_BAD_PARAM, "cudnnBackendFinalize"); });
  CHECK(contains(dnn, "CUDNN_STATUS_BAD_PARAM"));
}

TEST_CASE("cuda runtime: device objects throw rlxf::Error, not crash, without a GPU") {
  // Host-side checks need no device: an empty buffer allocates nothing.
  DeviceBuffer<float> empty;
  CHECK(empty.size() == 0);
  CHECK(empty.data() == nullptr);
  std::vector<float> three(3);
  const std::string size_msg = error_of([&] { empty.copy_from_host(three); });
  CHECK(contains(size_msg, "3 elements"));
  CHECK(contains(size_msg, "holds 0"));
  // The GEMMs' shape checks (run before any cuBLAS call).
  CHECK(contains(error_of([] { rlxf::cuda::blas_detail::check_gemm_shape("cublas_gemm", Trans::no, Trans::no, 2, 2, 2, 1, 2, 2); }),
                 "lda = 1 is smaller than the 2 columns of A"));
  CHECK(contains(error_of([] { rlxf::cuda::blas_detail::check_gemm_shape("cublas_gemm", Trans::yes, Trans::yes, 4, 3, 2, 4, 2, 2); }),
                 "ldc = 2 is smaller than the 3 columns of C"));

  if (device_count() == 0) {
    const std::string name = no_device_error_name();
    for (const std::string& msg : {error_of([] { DeviceBuffer<float> b(16); }),
                                   error_of([] { DeviceBuffer<bf16> b(1); }),
                                   error_of([] { CublasHandle h; }),
                                   error_of([] { LtGemm lt; }),
                                   error_of([] { CudnnHandle h; }),
                                   error_of([] { Stream s; }),
                                   error_of([] { Event e; })}) {
      CHECK(contains(msg, "no usable GPU"));
      CHECK(contains(msg, name));
    }
    note_gpu_part_skipped("buffer round trips, streams and events");
    return;
  }
  (void)require_device(0);
  std::vector<float> host(1000);
  for (std::size_t i = 0; i < host.size(); ++i) host[i] = static_cast<float>(i) * 0.5f;
  DeviceBuffer<float> a = DeviceBuffer<float>::from_host(host);
  DeviceBuffer<float> b(host.size());
  b.copy_from_device(a);
  CHECK(b.to_host() == host);
  b.zero();
  CHECK(b.to_host() == std::vector<float>(host.size(), 0.0f));
  DeviceBuffer<float> moved = std::move(a);
  CHECK(a.data() == nullptr);
  CHECK(moved.size() == host.size());

  Stream stream;
  Event start, stop;
  std::vector<float> back(host.size());
  start.record(stream);
  b.copy_from_host_async(host, stream);
  b.copy_to_host_async(back, stream);
  stop.record(stream);
  stream.synchronize();
  CHECK(back == host);
  CHECK(Event::elapsed_ms(start, stop) >= 0.0f);
  const std::string msg = error_of([&] { b.copy_to_host(std::span<float>(back.data(), 10)); });
  CHECK(contains(msg, "10 elements"));
  CHECK(contains(msg, "holds 1000"));
}

// ---- cuBLAS and cuBLASLt ----

namespace {

// One GEMM problem with integer inputs, its host reference and the device run.
template <class In, class Out>
struct GemmCase {
  Trans ta, tb;
  std::int64_t M = 5, N = 7, K = 9, batch = 1;
  std::int64_t lda, ldb, ldc, stride_a, stride_b, stride_c;
  std::vector<In> a, b;
  std::vector<Out> c;
  std::vector<Out> bias;
  float alpha = 2.0f, beta = -1.0f;
  static constexpr double pad_value = 77.0;  // in C's padding columns: must stay untouched

  GemmCase(Trans ta_, Trans tb_, std::int64_t batch_) : ta(ta_), tb(tb_), batch(batch_) {
    const std::int64_t a_rows = ta == Trans::no ? M : K, a_cols = ta == Trans::no ? K : M;
    const std::int64_t b_rows = tb == Trans::no ? K : N, b_cols = tb == Trans::no ? N : K;
    lda = a_cols + 3, ldb = b_cols + 2, ldc = N + 1;
    stride_a = a_rows * lda, stride_b = b_rows * ldb, stride_c = M * ldc;
    a.resize(static_cast<std::size_t>(stride_a * batch));
    b.resize(static_cast<std::size_t>(stride_b * batch));
    c.resize(static_cast<std::size_t>(stride_c * batch));
    bias.resize(static_cast<std::size_t>(N));
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = cast<In>(small_int(1, i));
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = cast<In>(small_int(2, i));
    for (std::size_t i = 0; i < c.size(); ++i)
      c[i] = cast<Out>(static_cast<std::int64_t>(i) % ldc >= N ? pad_value : small_int(3, i));
    for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = cast<Out>(small_int(4, i));
  }
  double op_a(std::int64_t p, std::int64_t m, std::int64_t k) const {
    const std::int64_t i = p * stride_a + (ta == Trans::no ? m * lda + k : k * lda + m);
    return value(a[static_cast<std::size_t>(i)]);
  }
  double op_b(std::int64_t p, std::int64_t k, std::int64_t n) const {
    const std::int64_t i = p * stride_b + (tb == Trans::no ? k * ldb + n : n * ldb + k);
    return value(b[static_cast<std::size_t>(i)]);
  }
  // The exact result (before any epilogue) at (p, m, n).
  double reference(std::int64_t p, std::int64_t m, std::int64_t n) const {
    double acc = 0;
    for (std::int64_t k = 0; k < K; ++k) acc += op_a(p, m, k) * op_b(p, k, n);
    return alpha * acc + beta * value(c[static_cast<std::size_t>(p * stride_c + m * ldc + n)]);
  }
  std::string label() const {
    return rlxf::detail::concat(type_name<In>(), " -> ", type_name<Out>(), ta == Trans::yes ? " T" : " N",
                                tb == Trans::yes ? "T" : "N", " batch ", batch);
  }
  // Compares the device result with the reference; `epilogue` applied on the host side.
  void compare(const std::vector<Out>& got, LtEpilogue epilogue) const {
    INFO(label(), " epilogue ", static_cast<int>(epilogue));
    for (std::int64_t p = 0; p < batch; ++p)
      for (std::int64_t m = 0; m < M; ++m)
        for (std::int64_t n = 0; n < ldc; ++n) {
          const double g = value(got[static_cast<std::size_t>(p * stride_c + m * ldc + n)]);
          if (n >= N) {
            REQUIRE(g == pad_value);
            continue;
          }
          double want = reference(p, m, n);
          if (epilogue != LtEpilogue::none) want += value(bias[static_cast<std::size_t>(n)]);
          if (epilogue == LtEpilogue::gelu_bias) {
            // A transcendental: a few f32 ulps, then the rounding to C's type.
            want = gelu_tanh(want);
            const double ulp = std::is_same_v<Out, float> ? 0x1p-20 : std::is_same_v<Out, f16> ? 0x1p-10 : 0x1p-7;
            REQUIRE(std::abs(g - want) <= ulp * std::max(1.0, std::abs(want)) + 1e-5);
          } else {
            REQUIRE(g == want);  // integers below 2^8: exact in every type
          }
        }
  }
};

template <class In, class Out>
void check_cublas_and_lt(CublasHandle& blas, LtGemm& lt) {
  for (const Trans ta : {Trans::no, Trans::yes})
    for (const Trans tb : {Trans::no, Trans::yes})
      for (const std::int64_t batch : {std::int64_t{1}, std::int64_t{3}}) {
        GemmCase<In, Out> t(ta, tb, batch);
        const auto a = DeviceBuffer<In>::from_host(t.a), b = DeviceBuffer<In>::from_host(t.b);
        const auto bias = DeviceBuffer<Out>::from_host(t.bias);
        DeviceBuffer<Out> c(t.c.size());
        // cuBLAS
        c.copy_from_host(t.c);
        if (batch == 1)
          cublas_gemm(blas, ta, tb, t.M, t.N, t.K, t.alpha, a.data(), t.lda, b.data(), t.ldb, t.beta, c.data(), t.ldc);
        else
          cublas_gemm_strided_batched(blas, ta, tb, t.M, t.N, t.K, t.alpha, a.data(), t.lda, t.stride_a, b.data(),
                                      t.ldb, t.stride_b, t.beta, c.data(), t.ldc, t.stride_c, batch);
        t.compare(c.to_host(), LtEpilogue::none);
        // cuBLASLt, each epilogue
        for (const LtEpilogue ep : {LtEpilogue::none, LtEpilogue::bias, LtEpilogue::gelu_bias}) {
          c.copy_from_host(t.c);
          const Out* bias_ptr = ep == LtEpilogue::none ? nullptr : bias.data();
          lt.gemm_strided_batched(ta, tb, t.M, t.N, t.K, t.alpha, a.data(), t.lda, t.stride_a, b.data(), t.ldb,
                                  t.stride_b, t.beta, c.data(), t.ldc, t.stride_c, batch, ep, bias_ptr);
          t.compare(c.to_host(), ep);
        }
      }
}

}  // namespace

TEST_CASE("cuda cuBLAS and cuBLASLt GEMM equal a host triple loop exactly") {
  if (device_count() == 0) {
    CHECK(contains(error_of([] { CublasHandle h; }), "no usable GPU"));
    note_gpu_part_skipped("cuBLAS / cuBLASLt GEMM against the host, f32 / f16 / bf16, NN NT TN TT, batched, epilogues");
    return;
  }
  (void)require_device(0);
  CublasHandle blas;
  LtGemm lt;
  check_cublas_and_lt<float, float>(blas, lt);
  check_cublas_and_lt<f16, f16>(blas, lt);
  check_cublas_and_lt<f16, float>(blas, lt);
  check_cublas_and_lt<bf16, bf16>(blas, lt);
  check_cublas_and_lt<bf16, float>(blas, lt);
  // One plan per distinct problem: calling again with the same shapes adds none.
  const std::size_t plans = lt.cached_plans();
  check_cublas_and_lt<float, float>(blas, lt);
  CHECK(lt.cached_plans() == plans);
}

// ---- cuDNN SDPA ----

TEST_CASE("cuda cuDNN SDPA: configurations are checked before cuDNN sees them") {
  SdpaShape s{2, 3, 16, 24, 64};
  SdpaOptions causal;
  causal.causal = true;
  CHECK(contains(error_of([&] { (void)sdpa_forward_graph<f16>(s, causal); }), "seq_q == seq_kv"));
  s.head_dim = 0;
  CHECK(contains(error_of([&] { (void)sdpa_backward_graph<bf16>(s, {}); }), "must be positive"));
}

// Builds the forward and backward graphs (no GPU needed) and asks cuDNN to plan them for an
// A100 and an H100. See tests/cuda/CMakeLists.txt for the stub-driver rerun.
TEST_CASE("cuda cuDNN SDPA graphs build and plan for A100 and H100 (deviceless)") {
  const bool stub_driver = std::getenv("RLXF_CUDNN_STUB_DRIVER") != nullptr;
  struct Case {
    DeviceProperties device;
    bool backward, bf16_io, causal, padded;
  };
  std::vector<Case> cases;
  for (const bool backward : {false, true})
    for (int mask = 0; mask < 4; ++mask) cases.push_back({a100(), backward, false, (mask & 1) != 0, (mask & 2) != 0});
  for (const bool backward : {false, true}) {
    cases.push_back({a100(), backward, true, true, false});
    cases.push_back({h100(), backward, true, true, true});
    cases.push_back({h100(), backward, false, false, false});
  }
  const SdpaShape shape{2, 3, 100, 100, 64};  // a sequence length that is not a tile multiple
  for (const Case& c : cases) {
    SdpaOptions o;
    o.causal = c.causal;
    o.padded = c.padded;
    const std::string label = rlxf::detail::concat(c.device.name, c.backward ? " backward " : " forward ",
                                                   c.bf16_io ? "bf16" : "f16", c.causal ? " causal" : "",
                                                   c.padded ? " padded" : "");
    INFO(label);
    const SdpaGraph graph = c.backward ? (c.bf16_io ? sdpa_backward_graph<bf16>(shape, o) : sdpa_backward_graph<f16>(shape, o))
                                       : (c.bf16_io ? sdpa_forward_graph<bf16>(shape, o) : sdpa_forward_graph<f16>(shape, o));
    const CudnnDeviceProperties target(c.device);
    // At most two engine configurations each: compiling a kernel takes about a second.
    const CudnnPlan plan = CudnnPlan::attempt(graph.descriptor(), target, 2);
    bool compiled = plan.ok();  // a plan (only with a driver and that GPU)
    std::string tried;
    for (const CudnnEngineAttempt& a : plan.attempts()) {
      // The kernel was generated and compiled; only loading it into the (stub) driver failed.
      compiled = compiled || (a.status == CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER &&
                              contains(a.reason, "cuLibraryLoadData"));
      tried += rlxf::detail::concat(" [engine ", a.engine, ": ", cudnnGetErrorString(a.status), "]");
    }
    INFO("attempts:", tried, " heuristics:", plan.heuristics_notes());
    if (stub_driver) {
      CHECK(compiled);
    } else {
      // Without any driver the SDPA engines stop at their runtime prerequisite (libcuda),
      // which they check after accepting the graph pattern; a pattern they do not recognise
      // is refused earlier with CUDNN_STATUS_NOT_SUPPORTED ("tag_mha_graph": as for a softmax
      // with a wrong operation, tried while writing this test). The fallback heuristics' generic
      // engines refuse every attention graph that way, so only the mode-A note is checked.
      const std::string& notes = plan.heuristics_notes();
      const std::string mode_a = notes.substr(0, notes.find("heuristics mode FALLBACK"));
      CHECK((compiled || contains(mode_a, "RUNTIME_PREREQUISITE_MISSING")));
    }
  }
  if (!stub_driver)
    MESSAGE("cuDNN planned without a driver: graphs finalized and the SDPA engines accepted them; the kernel "
            "compilation check runs in the ctest entry cuda_cudnn_sdpa_plans_compile_with_stub_driver");
}

namespace {

// Naive attention in double over the (rounded) inputs: O, stats and, given dO, dQ, dK, dV.
struct AttentionReference {
  SdpaShape s;
  SdpaOptions o;
  std::vector<int> len_q, len_kv;
  std::vector<double> out, stats, d_q, d_k, d_v;

  bool visible(std::int64_t b, std::int64_t i, std::int64_t j) const {
    if (o.causal && j > i) return false;
    if (o.padded && (i >= len_q[static_cast<std::size_t>(b)] || j >= len_kv[static_cast<std::size_t>(b)])) return false;
    return true;
  }
  template <class T>
  void run(const std::vector<T>& q, const std::vector<T>& k, const std::vector<T>& v, const std::vector<T>& d_o) {
    const std::int64_t B = s.batch, H = s.heads, Sq = s.seq_q, Skv = s.seq_kv, D = s.head_dim;
    const double scale = o.scale > 0 ? o.scale : 1.0 / std::sqrt(static_cast<double>(D));
    out.assign(static_cast<std::size_t>(B * H * Sq * D), 0.0);
    d_q.assign(out.size(), 0.0);
    stats.assign(static_cast<std::size_t>(B * H * Sq), 0.0);
    d_k.assign(static_cast<std::size_t>(B * H * Skv * D), 0.0);
    d_v.assign(d_k.size(), 0.0);
    auto at = [](const auto& x, std::int64_t i) { return value(x[static_cast<std::size_t>(i)]); };
    for (std::int64_t b = 0; b < B; ++b)
      for (std::int64_t h = 0; h < H; ++h) {
        const std::int64_t qo = (b * H + h) * Sq * D, ko = (b * H + h) * Skv * D;
        for (std::int64_t i = 0; i < Sq; ++i) {
          std::vector<double> p(static_cast<std::size_t>(Skv), 0.0);
          double mx = -1e300;
          for (std::int64_t j = 0; j < Skv; ++j) {
            if (!visible(b, i, j)) continue;
            double dot = 0;
            for (std::int64_t d = 0; d < D; ++d) dot += at(q, qo + i * D + d) * at(k, ko + j * D + d);
            p[static_cast<std::size_t>(j)] = scale * dot;
            mx = std::max(mx, scale * dot);
          }
          double z = 0;
          for (std::int64_t j = 0; j < Skv; ++j)
            if (visible(b, i, j)) z += std::exp(p[static_cast<std::size_t>(j)] - mx);
          stats[static_cast<std::size_t>((b * H + h) * Sq + i)] = mx + std::log(z);
          for (std::int64_t j = 0; j < Skv; ++j)
            p[static_cast<std::size_t>(j)] = visible(b, i, j) ? std::exp(p[static_cast<std::size_t>(j)] - mx) / z : 0.0;
          for (std::int64_t d = 0; d < D; ++d) {
            double acc = 0;
            for (std::int64_t j = 0; j < Skv; ++j) acc += p[static_cast<std::size_t>(j)] * at(v, ko + j * D + d);
            out[static_cast<std::size_t>(qo + i * D + d)] = acc;
          }
          // Backward for row i: dP_j = dO_i . V_j; D_i = dO_i . O_i; dS_j = P_j (dP_j - D_i).
          double row_dot = 0;
          for (std::int64_t d = 0; d < D; ++d) row_dot += at(d_o, qo + i * D + d) * out[static_cast<std::size_t>(qo + i * D + d)];
          for (std::int64_t j = 0; j < Skv; ++j) {
            const double pj = p[static_cast<std::size_t>(j)];
            if (pj == 0.0) continue;
            double dp = 0;
            for (std::int64_t d = 0; d < D; ++d) dp += at(d_o, qo + i * D + d) * at(v, ko + j * D + d);
            const double ds = scale * pj * (dp - row_dot);
            for (std::int64_t d = 0; d < D; ++d) {
              d_v[static_cast<std::size_t>(ko + j * D + d)] += pj * at(d_o, qo + i * D + d);
              d_q[static_cast<std::size_t>(qo + i * D + d)] += ds * at(k, ko + j * D + d);
              d_k[static_cast<std::size_t>(ko + j * D + d)] += ds * at(q, qo + i * D + d);
            }
          }
        }
      }
  }
};

// max |got - want| over the valid rows, relative to max |want| (1 when smaller).
template <class T>
double relative_error(const std::vector<T>& got, const std::vector<double>& want, std::int64_t rows_per_head,
                      std::int64_t width, std::int64_t heads, const std::vector<int>& valid_rows) {
  double err = 0, scale = 1;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const std::int64_t row = static_cast<std::int64_t>(i) / width % rows_per_head;
    const std::int64_t b = static_cast<std::int64_t>(i) / width / rows_per_head / heads;
    if (row >= valid_rows[static_cast<std::size_t>(b)]) continue;
    err = std::max(err, std::abs(value(got[i]) - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return err / scale;
}

template <class T>
void check_sdpa_on_gpu(CudnnHandle& handle, bool causal, bool padded) {
  const SdpaShape s{2, 3, 70, 70, 64};
  SdpaOptions o;
  o.causal = causal;
  o.padded = padded;
  INFO(type_name<T>(), causal ? " causal" : "", padded ? " padded" : "");
  const std::size_t nq = static_cast<std::size_t>(s.batch * s.heads * s.seq_q * s.head_dim);
  const std::size_t nk = static_cast<std::size_t>(s.batch * s.heads * s.seq_kv * s.head_dim);
  std::vector<T> q(nq), k(nk), v(nk), d_o(nq);
  for (std::size_t i = 0; i < nq; ++i) q[i] = cast<T>(unit(11, i)), d_o[i] = cast<T>(unit(14, i));
  for (std::size_t i = 0; i < nk; ++i) k[i] = cast<T>(unit(12, i)), v[i] = cast<T>(unit(13, i));
  AttentionReference ref{s, o, {70, 45}, {70, 45}, {}, {}, {}, {}, {}};
  if (!padded) ref.len_q = ref.len_kv = {70, 70};
  ref.run(q, k, v, d_o);

  const auto dq_in = DeviceBuffer<T>::from_host(q), dk_in = DeviceBuffer<T>::from_host(k),
             dv_in = DeviceBuffer<T>::from_host(v), ddo = DeviceBuffer<T>::from_host(d_o);
  const std::vector<std::int32_t> lens(ref.len_q.begin(), ref.len_q.end());
  const auto len_q = DeviceBuffer<std::int32_t>::from_host(lens), len_kv = DeviceBuffer<std::int32_t>::from_host(lens);
  DeviceBuffer<T> out(nq), grad_q(nq), grad_k(nk), grad_v(nk);
  DeviceBuffer<float> stats(static_cast<std::size_t>(s.batch * s.heads * s.seq_q));

  SdpaForward<T> forward(handle, s, o);
  forward(handle, dq_in.data(), dk_in.data(), dv_in.data(), out.data(), stats.data(), len_q.data(), len_kv.data());
  SdpaBackward<T> backward(handle, s, o);
  backward(handle, dq_in.data(), dk_in.data(), dv_in.data(), out.data(), ddo.data(), stats.data(), grad_q.data(),
           grad_k.data(), grad_v.data(), len_q.data(), len_kv.data());
  synchronize_device();

  // f16 keeps 11 significant bits, bf16 8: outputs rounded once, P rounded before P V.
  const double tol = std::is_same_v<T, f16> ? 4e-3 : 3e-2;
  CHECK(relative_error(out.to_host(), ref.out, s.seq_q, s.head_dim, s.heads, ref.len_q) <= tol);
  CHECK(relative_error(stats.to_host(), ref.stats, s.seq_q, 1, s.heads, ref.len_q) <= 1e-3);
  CHECK(relative_error(grad_q.to_host(), ref.d_q, s.seq_q, s.head_dim, s.heads, ref.len_q) <= 4 * tol);
  CHECK(relative_error(grad_k.to_host(), ref.d_k, s.seq_kv, s.head_dim, s.heads, ref.len_kv) <= 4 * tol);
  CHECK(relative_error(grad_v.to_host(), ref.d_v, s.seq_kv, s.head_dim, s.heads, ref.len_kv) <= 4 * tol);
}

}  // namespace

TEST_CASE("cuda cuDNN SDPA forward and backward match naive attention") {
  if (device_count() == 0) {
    CHECK(contains(error_of([] { CudnnHandle h; }), "no usable GPU"));
    note_gpu_part_skipped("cuDNN SDPA forward/backward against host attention, f16/bf16, causal, padded");
    return;
  }
  const DeviceProperties p = require_device(0);
  if (p.sm() < 80) {
    MESSAGE("GPU ", p.name, " is sm_", p.sm(), ": cuDNN SDPA needs sm_80 or newer; this test was not run");
    return;
  }
  CudnnHandle handle;
  for (const bool causal : {false, true})
    for (const bool padded : {false, true}) {
      check_sdpa_on_gpu<f16>(handle, causal, padded);
      check_sdpa_on_gpu<bf16>(handle, causal, padded);
    }
}

// ---- compile-only coverage: every template the GPU tests use, instantiated here so CI compiles
// them even when no test can run them ----
template class rlxf::cuda::DeviceBuffer<float>;
template class rlxf::cuda::DeviceBuffer<f16>;
template class rlxf::cuda::DeviceBuffer<bf16>;
template class rlxf::cuda::SdpaForward<f16>;
template class rlxf::cuda::SdpaForward<bf16>;
template class rlxf::cuda::SdpaBackward<f16>;
template class rlxf::cuda::SdpaBackward<bf16>;
template SdpaGraph rlxf::cuda::sdpa_forward_graph<f16>(const SdpaShape&, const SdpaOptions&);
template SdpaGraph rlxf::cuda::sdpa_forward_graph<bf16>(const SdpaShape&, const SdpaOptions&);
template SdpaGraph rlxf::cuda::sdpa_backward_graph<f16>(const SdpaShape&, const SdpaOptions&);
template SdpaGraph rlxf::cuda::sdpa_backward_graph<bf16>(const SdpaShape&, const SdpaOptions&);
[[maybe_unused]] static void instantiate_gemms(CublasHandle& blas, LtGemm& lt) {
  check_cublas_and_lt<float, float>(blas, lt);
  check_cublas_and_lt<f16, f16>(blas, lt);
  check_cublas_and_lt<f16, float>(blas, lt);
  check_cublas_and_lt<bf16, bf16>(blas, lt);
  check_cublas_and_lt<bf16, float>(blas, lt);
}
