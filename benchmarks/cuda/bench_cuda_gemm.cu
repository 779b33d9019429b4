// GPU GEMM throughput: rlxf's own kernels (cuda::gemm, gemm/gemm.hpp) against cuBLAS
// (cublasGemmEx, CUBLAS_COMPUTE_32F) and cuBLASLt (LtGemm, heuristic's first algorithm), all
// three row-major with f32 accumulation (cublas_gemm.hpp), on
//   - square products M = N = K in {512, ..., 8192}, case NN;
//   - the linear layers of GPT-2 small (C = 768) and medium (C = 1024) over B*T = 8192 tokens
//     (batch 8 x sequence 1024), weight W stored (out, in) as nn.Linear keeps it:
//       NT forward         Y  (BT, out) = X (BT, in) W^T          M = BT,  N = out, K = in
//       NN input gradient  dX (BT, in)  = dY (BT, out) W          M = BT,  N = in,  K = out
//       TN weight gradient dW (out, in) = dY^T X                  M = out, N = in,  K = BT
//     for the layers qkv (C -> 3C), fc (C -> 4C) and proj (4C -> C);
// for every element-type pair cuda::gemm ships: f16 -> f16, f16 -> f32, bf16 -> bf16,
// bf16 -> f32 (tensor cores) and f32 -> f32 (SIMT; cuBLAS without TF32, as rlxf's handle sets).
//
// Names: gemm/<in>_<out>/<case>/<shape>/<M>x<N>x<K>/<impl>/manual_time, impl in
// {cublas, ours, cublaslt}. Counters:
//   TFLOP/s      2 M N K / (GPU time of one product), from CUDA events
//   vs_cublas    cuBLAS's time / this time for the same problem (> 1: faster than cuBLAS),
//                cuBLAS timed once per problem when the problem is first set up
//   max_rel_err  max |C - C_cublas| / max |C_cublas|, checked once per problem (0 for cuBLAS)
// Each problem (types, case, M, N, K) is checked once: cuBLAS, ours and cuBLASLt run on the
// same random inputs (uniform in [-1, 1], rounded to the input type), C is first filled with
// NaN so an element a kernel skips cannot pass, and a result whose error exceeds the tolerance
// below fails the benchmark (SkipWithError) instead of reporting a time: a fast wrong kernel
// cannot look good. Tolerance, by rule: all three accumulate in f32 and round once to the
// output type, so two correct results may differ by one rounding each, at most 2 u max|C|
// (u = 2^-8 bf16, 2^-11 f16, 2^-24 f32), plus f32 accumulation-order differences, which for
// K <= 8192 stay orders of magnitude below the floor 1e-4 (relative to max|C|).
//
// Timing (gpu_benchmark.hpp): each benchmark iteration records a CUDA event, queues `reps`
// back-to-back products on one stream (reps = 2e11 / (2 M N K) clamped to [1, 64], so a
// timed block is about a millisecond of GPU work), records a second event and reports
// (elapsed / reps) through State::SetIterationTime. The operands stay resident in L2 between
// products when they fit (all of 512^3, none of the GPT-2 shapes); products under ~10 us
// (512^3) also measure the host's launch rate. Two untimed products warm up each run.
//
// Without a usable GPU the binary prints why (the "no usable GPU" error of
// cuda::require_device) and exits with status 2, so scripts can tell "no GPU here" from a
// failure; --benchmark_list_tests works without one (gpu_benchmark.hpp's main).
//
// The kernels are not compiled here: cuda::gemm's five instantiations are declared extern
// below and come from the nvcc-built kernel object (tests/cuda/kernels/gemm.cu), so this file
// only parses the kernel headers and compiles host code.
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gpu_benchmark.hpp"
#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/cublas_gemm.hpp"
#include "rlxf/cuda/device_buffer.hpp"
#include "rlxf/cuda/gemm/gemm.hpp"
#include "rlxf/cuda/runtime.hpp"

// Provided by the kernel object (explicit instantiation definitions in tests/cuda/kernels/gemm.cu).
namespace rlxf::cuda {
extern template void gemm<f16, f16>(bool, bool, const GemmParams<f16, f16>&, int, cudaStream_t);
extern template void gemm<f16, float>(bool, bool, const GemmParams<f16, float>&, int, cudaStream_t);
extern template void gemm<bf16, bf16>(bool, bool, const GemmParams<bf16, bf16>&, int, cudaStream_t);
extern template void gemm<bf16, float>(bool, bool, const GemmParams<bf16, float>&, int, cudaStream_t);
extern template void gemm<float, float>(bool, bool, const GemmParams<float, float>&, int, cudaStream_t);
}  // namespace rlxf::cuda

namespace {

namespace cuda = rlxf::cuda;
using rlxf::bf16;
using rlxf::f16;
using rlxf::bench::max_rel_err;
using rlxf::bench::random_buffer;
using rlxf::bench::type_name;
using rlxf::bench::unit_roundoff;

// ---- problems ----

enum class Impl { cublas, ours, cublaslt };
constexpr Impl all_impls[] = {Impl::cublas, Impl::ours, Impl::cublaslt};
const char* impl_name(Impl i) { return i == Impl::ours ? "ours" : i == Impl::cublas ? "cublas" : "cublaslt"; }

// One GEMM: C (M, N) = op(A) op(B), row-major, stored as the header comment of params.hpp says.
struct Problem {
  std::string shape;  // "square", "gpt2s_fc", ...
  bool ta = false, tb = false;
  int m = 0, n = 0, k = 0;

  const char* case_name() const { return ta ? (tb ? "TT" : "TN") : (tb ? "NT" : "NN"); }
  long lda() const { return ta ? m : k; }
  long ldb() const { return tb ? k : n; }
  long ldc() const { return n; }
  double flops() const { return 2.0 * m * n * static_cast<double>(k); }
  // Products queued between two events: about a millisecond of GPU work.
  int reps() const { return rlxf::bench::reps_for(flops()); }
  std::string dims() const { return rlxf::detail::concat(m, "x", n, "x", k); }
};

constexpr int tokens = 8192;  // B * T: batch 8 x sequence 1024

std::vector<Problem> problems() {
  std::vector<Problem> out;
  for (int s : {512, 1024, 2048, 4096, 8192}) out.push_back({"square", false, false, s, s, s});
  struct Layer { const char* name; int in, out; };
  const Layer layers[] = {{"gpt2s_qkv", 768, 2304},  {"gpt2s_fc", 768, 3072},  {"gpt2s_proj", 3072, 768},
                          {"gpt2m_qkv", 1024, 3072}, {"gpt2m_fc", 1024, 4096}, {"gpt2m_proj", 4096, 1024}};
  for (const Layer& l : layers) {
    out.push_back({l.name, false, true, tokens, l.out, l.in});   // NT forward
    out.push_back({l.name, false, false, tokens, l.in, l.out});  // NN input gradient
    out.push_back({l.name, true, false, l.out, l.in, tokens});   // TN weight gradient
  }
  return out;
}

// ---- the GPU, once per process ----

struct Gpu {
  cuda::DeviceProperties props;
  cuda::Stream stream;
  cuda::CublasHandle cublas;
  cuda::LtGemm lt;
  explicit Gpu(cuda::DeviceProperties p) : props(std::move(p)) {
    cublas.set_stream(stream);
    lt.set_stream(stream);
  }
};
std::unique_ptr<Gpu> gpu;  // created in main once a device is known to exist

// ---- operands: one problem's buffers live at a time ----

template <class T, class TOut>
struct Operands {
  cuda::DeviceBuffer<T> a, b;
  cuda::DeviceBuffer<TOut> c;
};

std::string live_key;                  // the problem whose operands are allocated
std::function<void()> release_operands;  // frees them (they are held by a typed cache)

std::string problem_key(const Problem& p, std::string_view types) {
  return rlxf::detail::concat(types, "/", p.case_name(), "/", p.dims());
}

template <class T, class TOut>
Operands<T, TOut>& operands(const Problem& p, const std::string& key) {
  static std::unique_ptr<Operands<T, TOut>> cache;
  if (key != live_key || !cache) {
    if (release_operands) release_operands();
    live_key.clear();
    release_operands = [] { cache.reset(); };  // also frees a half-built set if an allocation throws
    const auto mk = static_cast<std::size_t>(p.m) * p.k, kn = static_cast<std::size_t>(p.k) * p.n;
    cache = std::make_unique<Operands<T, TOut>>();
    cache->a = random_buffer<T>(mk, 1);  // uniform in [-1, 1)
    cache->b = random_buffer<T>(kn, 2);
    cache->c = cuda::DeviceBuffer<TOut>(static_cast<std::size_t>(p.m) * p.n);
    live_key = key;
  }
  return *cache;
}

// ---- the three implementations ----

template <class T, class TOut>
void run_gemm(Impl impl, const Problem& p, const T* a, const T* b, TOut* c) {
  const auto ta = p.ta ? cuda::Trans::yes : cuda::Trans::no, tb = p.tb ? cuda::Trans::yes : cuda::Trans::no;
  switch (impl) {
    case Impl::ours: {
      cuda::GemmParams<T, TOut> g;
      g.a = a, g.b = b, g.c = c;
      g.m = p.m, g.n = p.n, g.k = p.k;
      g.lda = p.lda(), g.ldb = p.ldb(), g.ldc = p.ldc();
      cuda::gemm<T, TOut>(p.ta, p.tb, g, gpu->props.sm_count, gpu->stream.get());
      break;
    }
    case Impl::cublas:
      cuda::cublas_gemm<T, TOut>(gpu->cublas, ta, tb, p.m, p.n, p.k, 1.0f, a, p.lda(), b, p.ldb(), 0.0f, c, p.ldc());
      break;
    case Impl::cublaslt:
      gpu->lt.gemm<T, TOut>(ta, tb, p.m, p.n, p.k, 1.0f, a, p.lda(), b, p.ldb(), 0.0f, c, p.ldc());
      break;
  }
}

// One product of `impl` on the problem's operands, queued on the benchmark stream.
template <class T, class TOut>
auto product(Impl impl, const Problem& p, Operands<T, TOut>& ops) {
  return [impl, &p, &ops] { run_gemm(impl, p, ops.a.data(), ops.b.data(), ops.c.data()); };
}

// ---- the once-per-problem check and cuBLAS reference time ----

struct Check {
  double err_ours = 0, err_lt = 0;  // max |C - C_cublas| / max |C_cublas|
  double tol = 0;
  double cublas_seconds = 0;  // median of timed blocks
};
std::map<std::string, Check> checks;

template <class T, class TOut>
const Check& check_problem(const Problem& p, const std::string& key, Operands<T, TOut>& ops) {
  if (auto it = checks.find(key); it != checks.end()) return it->second;
  Check chk;
  chk.tol = 2 * unit_roundoff<TOut>() + 1e-4;
  const auto poison = [&] { rlxf::bench::poison(ops.c, gpu->stream); };  // NaN
  std::vector<TOut> ref(ops.c.size()), got(ops.c.size());
  poison();
  run_gemm(Impl::cublas, p, ops.a.data(), ops.b.data(), ops.c.data());
  gpu->stream.synchronize();  // the stream is non-blocking: cudaMemcpy would not wait for it
  ops.c.copy_to_host(ref);
  for (Impl impl : {Impl::ours, Impl::cublaslt}) {
    poison();
    run_gemm(impl, p, ops.a.data(), ops.b.data(), ops.c.data());
    gpu->stream.synchronize();
    ops.c.copy_to_host(got);
    (impl == Impl::ours ? chk.err_ours : chk.err_lt) = max_rel_err<TOut>(got, ref);
  }
  // cuBLAS reference time: warm up, then the median of 5 timed blocks.
  chk.cublas_seconds = rlxf::bench::median_time(gpu->stream, p.reps(), product(Impl::cublas, p, ops));
  return checks.emplace(key, chk).first->second;
}

// ---- the benchmark ----

template <class T, class TOut>
void bench(benchmark::State& state, const Problem& p, Impl impl) {
  try {
    const std::string key = problem_key(p, rlxf::detail::concat(type_name<T>(), "_", type_name<TOut>()));
    auto& ops = operands<T, TOut>(p, key);
    const Check& chk = check_problem<T, TOut>(p, key, ops);
    const double err = impl == Impl::ours ? chk.err_ours : impl == Impl::cublaslt ? chk.err_lt : 0.0;
    if (!(err <= chk.tol)) {
      const std::string msg = rlxf::detail::concat(impl_name(impl), " differs from cuBLAS: max |C - C_cublas| / max |C_cublas| = ",
                                                   err, " > tolerance ", chk.tol);
      state.SkipWithError(msg.c_str());
      return;
    }
    const int reps = p.reps();
    const double seconds = rlxf::bench::run_timed(state, gpu->stream, reps, product(impl, p, ops));
    state.counters["TFLOP/s"] = p.flops() / seconds * 1e-12;
    state.counters["vs_cublas"] = chk.cublas_seconds / seconds;
    state.counters["max_rel_err"] = err;
    state.counters["reps"] = reps;
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

template <class T, class TOut>
void register_type_pair() {
  const std::string types = rlxf::detail::concat(type_name<T>(), "_", type_name<TOut>());
  for (const Problem& p : problems()) {
    for (Impl impl : all_impls) {
      const std::string name =
          rlxf::detail::concat("gemm/", types, "/", p.case_name(), "/", p.shape, "/", p.dims(), "/", impl_name(impl));
      benchmark::RegisterBenchmark(name.c_str(), [p, impl](benchmark::State& s) { bench<T, TOut>(s, p, impl); })
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  rlxf::bench::Hooks hooks;
  hooks.register_benchmarks = [] {
    register_type_pair<f16, f16>();
    register_type_pair<f16, float>();
    register_type_pair<bf16, bf16>();
    register_type_pair<bf16, float>();
    register_type_pair<float, float>();
  };
  hooks.start = [](cuda::DeviceProperties props) { gpu = std::make_unique<Gpu>(std::move(props)); };
  hooks.stop = [] {
    if (release_operands) release_operands();
    gpu.reset();
  };
  return rlxf::bench::run_gpu_benchmarks(argc, argv, "bench_cuda_gemm", hooks);
}
