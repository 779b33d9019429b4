// GPU fused-attention throughput: rlxf's FlashAttention-2 style kernels (cuda::attention,
// attention/attention.hpp) against cuDNN's fused SDPA (cudnn_attention.hpp, the runtime-fusion
// engines), forward and backward, f16 and bf16, head dims 64 and 128, causal and not, on
// FlashAttention's benchmark shapes: 16k tokens in total, sequence length s in
// {512, ..., 8192} with batch b = 16384 / s, 16 heads (hidden 1024 at d = 64, 2048 at
// d = 128, FlashAttention-2's d = 128 setting), as many kv heads as q heads, q_len = kv_len = s
// (cuDNN's causal mask requires it; ours, aligned to the bottom-right corner, is then the same).
// Layouts: Q, K, V, O and their gradients (b, h, s, d) contiguous, as both sides take them.
//
// Names: attention/<fwd|bwd>/<type>/d<d>/<full|causal>/<b>x<h>x<s>/<impl>/manual_time, impl in
// {cudnn, ours}. Counters:
//   TFLOP/s      FLOPs counted as FlashAttention's benchmark counts them: forward 4 b h s^2 d
//                (Q K^T and P V), halved when causal; backward 2.5 times the forward (five
//                products, recomputing S included); divided by the GPU time of one pass
//   vs_cudnn     cuDNN's time / this time for the same problem and pass (> 1: faster than
//                cuDNN), cuDNN timed once per problem and pass when it is first checked
//   max_rel_err  ours against cuDNN (0 for cuDNN itself), checked once per problem and pass:
//                forward max |O - O_cudnn| / max |O_cudnn|; backward the largest of that
//                measure over dQ, dK and dV
// What a pass includes: forward, one launch of our kernel / one cuDNN plan execution
// writing O and the log-sum-exp L; backward, our three kernels (D = rowsum(dO O) and
// zeroing the dQ accumulator, the main kernel, dQ conversion; the non-deterministic f32
// atomic dQ, FlashAttention's default) / one cuDNN plan execution, from Q, K, V, O, dO, L
// to dQ, dK, dV. Workspaces are allocated once per problem, outside the timing.
//
// Correctness check, once per problem and pass: inputs Q, K, V, dO standard normal (as
// FlashAttention's benchmark draws them), rounded to the type; outputs first filled with NaN
// so an element a kernel skips cannot pass. Forward: both compute O and L from Q, K, V; L
// (natural-log log-sum-exp of each score row) must agree within 1e-3 absolute. Backward: both
// get the same O, L (cuDNN's forward) and dO. A result whose error exceeds the tolerance, or
// a problem cuDNN cannot run (no engine builds a plan: then there is no reference), fails
// the benchmark (SkipWithError) instead of reporting a time: a fast wrong kernel cannot look
// good. Tolerance, by rule: both implementations accumulate in f32 and round to the input
// type the same intermediates once (P before P V; P and dS before the products that read
// them) and each output once, so each is within about two roundings of the exact result:
// forward 4 u (two implementations, two roundings each; u = 2^-11 f16, 2^-8 bf16). Backward
// 8 u: cuDNN folds the softmax scale into dS before rounding it, where FlashAttention and
// ours scale dQ and dK afterwards, and at s = 8192 f16's dS (1e-5 .. 1e-4) reaches the
// subnormal range, whose absolute spacing costs up to a few u more. Both plus a floor of
// 1e-4 for f32 summation-order differences; all relative to max |reference|. (A simulation of
// the two rounding models on one head, s = 512 .. 8192, gives at most 2 u for every output.)
// L: f32 sums of up to 8192 terms differ by at most 8192 x 2^-24 (5e-4) relative, 5e-4 in the
// log; a skipped key tile of 64 in 8192 shifts L by 8e-3.
//
// Timing and main: gpu_benchmark.hpp (CUDA events around `reps` passes, reps = 2e11 / flops
// clamped to [1, 64]; without a usable GPU the binary prints why and exits with status 2;
// --benchmark_list_tests works without one). One problem's tensors (about 0.75 GB at d = 128)
// and cuDNN plans live at a time; the benchmarks of a problem are registered together.
//
// The kernels are not compiled here: attention::forward / backward<f16|bf16, StreamLauncher>
// are declared extern below and come from the nvcc-built kernel object
// (tests/cuda/kernels/attention.cu), so this file only parses the kernel headers and compiles
// host code. They must be called with those exact template arguments (an rvalue
// StreamLauncher): any other specialization would instantiate the kernels here.
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
#include <utility>
#include <vector>

#include "gpu_benchmark.hpp"
#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/attention/attention.hpp"
#include "rlxf/cuda/cudnn_attention.hpp"
#include "rlxf/cuda/device_buffer.hpp"
#include "rlxf/cuda/launch.hpp"
#include "rlxf/cuda/runtime.hpp"

// Provided by the kernel object (explicit instantiation definitions in tests/cuda/kernels/attention.cu).
namespace rlxf::cuda::attention {
extern template void forward<f16, StreamLauncher>(const ForwardParams<f16>&, StreamLauncher&&);
extern template void forward<bf16, StreamLauncher>(const ForwardParams<bf16>&, StreamLauncher&&);
extern template void backward<f16, StreamLauncher>(const BackwardParams<f16>&, StreamLauncher&&);
extern template void backward<bf16, StreamLauncher>(const BackwardParams<bf16>&, StreamLauncher&&);
}  // namespace rlxf::cuda::attention

namespace {

namespace cuda = rlxf::cuda;
namespace attn = rlxf::cuda::attention;
using rlxf::bf16;
using rlxf::f16;
using rlxf::bench::Distribution;
using rlxf::bench::max_rel_err;
using rlxf::bench::random_buffer;
using rlxf::bench::type_name;
using rlxf::bench::unit_roundoff;

// ---- problems ----

enum class Impl { cudnn, ours };
enum class Pass { fwd, bwd };
const char* impl_name(Impl i) { return i == Impl::ours ? "ours" : "cudnn"; }
const char* pass_name(Pass p) { return p == Pass::fwd ? "fwd" : "bwd"; }

struct Problem {
  int batch = 0, heads = 0, seq = 0, head_dim = 0;
  bool causal = false;

  const char* mask() const { return causal ? "causal" : "full"; }
  std::string dims() const { return rlxf::detail::concat(batch, "x", heads, "x", seq); }
  // FlashAttention's count: forward 4 b h s^2 d (halved when causal), backward 2.5 x forward.
  double flops(Pass pass) const {
    const double fwd = 4.0 * batch * heads * static_cast<double>(seq) * seq * head_dim / (causal ? 2.0 : 1.0);
    return pass == Pass::fwd ? fwd : 2.5 * fwd;
  }
  int reps(Pass pass) const { return rlxf::bench::reps_for(flops(pass)); }
  std::size_t elements() const { return static_cast<std::size_t>(batch) * heads * seq * head_dim; }
  std::size_t rows() const { return static_cast<std::size_t>(batch) * heads * seq; }
  attn::Dims kernel_dims() const {
    attn::Shape s;
    s.batch = batch, s.q_heads = s.kv_heads = heads, s.q_len = s.kv_len = seq, s.head_dim = head_dim;
    attn::Options o;
    o.causal = causal;  // bottom-right aligned; the same as cuDNN's top-left mask when q_len == kv_len
    return attn::make_dims(s, o);
  }
  cuda::SdpaShape cudnn_shape() const { return {batch, heads, seq, seq, head_dim}; }
  cuda::SdpaOptions cudnn_options() const {
    cuda::SdpaOptions o;
    o.causal = causal;
    return o;
  }
};

constexpr int total_tokens = 16384;  // b * s, as FlashAttention's benchmark
constexpr int num_heads = 16;

std::vector<Problem> problems() {
  std::vector<Problem> out;
  for (int d : {64, 128})
    for (bool causal : {false, true})
      for (int s : {512, 1024, 2048, 4096, 8192}) out.push_back({total_tokens / s, num_heads, s, d, causal});
  return out;
}

// ---- the GPU, once per process ----

struct Gpu {
  cuda::DeviceProperties props;
  cuda::Stream stream;
  cuda::CudnnHandle cudnn;
  explicit Gpu(cuda::DeviceProperties p) : props(std::move(p)) { cudnn.set_stream(stream); }
};
std::unique_ptr<Gpu> gpu;  // created in main once a device is known to exist

// ---- one problem's tensors and cuDNN plans ----

template <class T>
struct Operands {
  cuda::DeviceBuffer<T> q, k, v, d_o;  // inputs
  cuda::DeviceBuffer<T> o;             // cuDNN's forward output: backward's input
  cuda::DeviceBuffer<float> lse;       // and its log-sum-exp
  bool have_reference_forward = false;
  cuda::DeviceBuffer<T> o_out;         // what timed forwards write
  cuda::DeviceBuffer<float> lse_out;
  cuda::DeviceBuffer<T> dq, dk, dv;    // what backwards write
  cuda::DeviceBuffer<float> delta, dq_accum;  // our backward's workspace
  // cuDNN plans, built when first needed; the error when cuDNN could not build one.
  std::unique_ptr<cuda::SdpaForward<T>> cudnn_fwd;
  std::unique_ptr<cuda::SdpaBackward<T>> cudnn_bwd;
  std::string cudnn_fwd_error, cudnn_bwd_error;
};

std::string live_key;                    // the problem whose operands are allocated
std::function<void()> release_operands;  // frees them (they are held by a typed cache)

template <class T>
std::string problem_key(const Problem& p) {
  return rlxf::detail::concat(type_name<T>(), "/d", p.head_dim, "/", p.mask(), "/", p.dims());
}

template <class T>
Operands<T>& operands(const Problem& p) {
  static std::unique_ptr<Operands<T>> cache;
  const std::string key = problem_key<T>(p);
  if (key != live_key || !cache) {
    if (release_operands) release_operands();
    live_key.clear();
    release_operands = [] { cache.reset(); };  // also frees a half-built set if an allocation throws
    const std::size_t n = p.elements(), rows = p.rows();
    cache = std::make_unique<Operands<T>>();
    Operands<T>& ops = *cache;
    ops.q = random_buffer<T>(n, 11, Distribution::normal);
    ops.k = random_buffer<T>(n, 12, Distribution::normal);
    ops.v = random_buffer<T>(n, 13, Distribution::normal);
    ops.d_o = random_buffer<T>(n, 14, Distribution::normal);
    ops.o = cuda::DeviceBuffer<T>(n);
    ops.lse = cuda::DeviceBuffer<float>(rows);
    ops.o_out = cuda::DeviceBuffer<T>(n);
    ops.lse_out = cuda::DeviceBuffer<float>(rows);
    ops.dq = cuda::DeviceBuffer<T>(n);
    ops.dk = cuda::DeviceBuffer<T>(n);
    ops.dv = cuda::DeviceBuffer<T>(n);
    const attn::Workspace ws = attn::backward_workspace<T>(p.kernel_dims(), false);
    ops.delta = cuda::DeviceBuffer<float>(ws.delta);
    ops.dq_accum = cuda::DeviceBuffer<float>(ws.dq_accum);
    live_key = key;
  }
  return *cache;
}

// Builds cuDNN's plan for the pass on first use; false (and the reason in *error) when cuDNN
// has none.
template <class T>
bool cudnn_ready(const Problem& p, Operands<T>& ops, Pass pass, std::string* error) {
  std::string& err = pass == Pass::fwd ? ops.cudnn_fwd_error : ops.cudnn_bwd_error;
  const bool built = pass == Pass::fwd ? ops.cudnn_fwd != nullptr : ops.cudnn_bwd != nullptr;
  if (!built && err.empty()) {
    try {
      if (pass == Pass::fwd)
        ops.cudnn_fwd = std::make_unique<cuda::SdpaForward<T>>(gpu->cudnn, p.cudnn_shape(), p.cudnn_options());
      else
        ops.cudnn_bwd = std::make_unique<cuda::SdpaBackward<T>>(gpu->cudnn, p.cudnn_shape(), p.cudnn_options());
    } catch (const std::exception& e) {
      err = e.what();
      if (err.empty()) err = "unknown error";
    }
  }
  *error = err;
  return err.empty();
}

// ---- the two implementations (queue one pass on the benchmark stream) ----

template <class T>
void run_forward(Impl impl, const Problem& p, Operands<T>& ops, T* o, float* lse) {
  if (impl == Impl::cudnn) {
    (*ops.cudnn_fwd)(gpu->cudnn, ops.q.data(), ops.k.data(), ops.v.data(), o, lse);
    return;
  }
  const attn::ForwardParams<T> fp{p.kernel_dims(), ops.q.data(), ops.k.data(), ops.v.data(), o, lse};
  attn::forward<T, cuda::StreamLauncher>(fp, cuda::StreamLauncher{gpu->stream.get()});
}

// Reads ops.o and ops.lse (cuDNN's forward), writes ops.dq, dk, dv.
template <class T>
void run_backward(Impl impl, const Problem& p, Operands<T>& ops) {
  if (impl == Impl::cudnn) {
    (*ops.cudnn_bwd)(gpu->cudnn, ops.q.data(), ops.k.data(), ops.v.data(), ops.o.data(), ops.d_o.data(),
                     ops.lse.data(), ops.dq.data(), ops.dk.data(), ops.dv.data());
    return;
  }
  attn::BackwardParams<T> bp{};
  bp.dims = p.kernel_dims();
  bp.q = ops.q.data(), bp.k = ops.k.data(), bp.v = ops.v.data();
  bp.o = ops.o.data(), bp.dout = ops.d_o.data(), bp.lse = ops.lse.data();
  bp.delta = ops.delta.data(), bp.dq_accum = ops.dq_accum.data();
  bp.deterministic = false;
  bp.dq = ops.dq.data(), bp.dk = ops.dk.data(), bp.dv = ops.dv.data();
  attn::backward<T, cuda::StreamLauncher>(bp, cuda::StreamLauncher{gpu->stream.get()});
}

template <class T>
std::function<void()> pass_op(Impl impl, Pass pass, const Problem& p, Operands<T>& ops) {
  if (pass == Pass::fwd) return [impl, &p, &ops] { run_forward(impl, p, ops, ops.o_out.data(), ops.lse_out.data()); };
  return [impl, &p, &ops] { run_backward(impl, p, ops); };
}

// ---- the once-per-problem-and-pass check and cuDNN reference time ----

struct Check {
  std::string no_reference;  // why cuDNN could not run ("" when it did)
  double err = 0;            // ours against cuDNN: max_rel_err's measure
  std::string failure;       // what exceeded its tolerance ("" when nothing did)
  double tol = 0;
  double cudnn_seconds = 0;  // median of timed blocks
};
std::map<std::string, Check> checks;

template <class T>
std::vector<T> host_copy(const cuda::DeviceBuffer<T>& buffer) {
  gpu->stream.synchronize();  // the stream is non-blocking: cudaMemcpy would not wait for it
  return buffer.to_host();
}

// cuDNN's forward into ops.o, ops.lse (the backward's inputs), once per problem.
template <class T>
bool reference_forward(const Problem& p, Operands<T>& ops, std::string* error) {
  if (!cudnn_ready(p, ops, Pass::fwd, error)) return false;
  if (!ops.have_reference_forward) {
    rlxf::bench::poison(ops.o, gpu->stream);
    rlxf::bench::poison(ops.lse, gpu->stream);
    run_forward(Impl::cudnn, p, ops, ops.o.data(), ops.lse.data());
    gpu->stream.synchronize();
    ops.have_reference_forward = true;
  }
  return true;
}

double max_abs_diff(std::span<const float> got, std::span<const float> ref) {
  double d = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double e = std::fabs(static_cast<double>(got[i]) - ref[i]);
    if (std::isnan(e)) return e;
    d = std::max(d, e);
  }
  return d;
}

template <class T>
void check_forward(const Problem& p, Operands<T>& ops, Check& chk) {
  chk.tol = 4 * unit_roundoff<T>() + 1e-4;
  constexpr double lse_tol = 1e-3;
  if (!reference_forward(p, ops, &chk.no_reference)) return;
  const std::vector<T> ref_o = host_copy(ops.o);
  const std::vector<float> ref_lse = host_copy(ops.lse);
  rlxf::bench::poison(ops.o_out, gpu->stream);
  rlxf::bench::poison(ops.lse_out, gpu->stream);
  run_forward(Impl::ours, p, ops, ops.o_out.data(), ops.lse_out.data());
  const std::vector<T> o = host_copy(ops.o_out);
  const std::vector<float> lse = host_copy(ops.lse_out);
  chk.err = max_rel_err<T>(o, ref_o);
  const double lse_err = max_abs_diff(lse, ref_lse);
  if (!(chk.err <= chk.tol))
    chk.failure = rlxf::detail::concat("max |O - O_cudnn| / max |O_cudnn| = ", chk.err, " > tolerance ", chk.tol);
  else if (!(lse_err <= lse_tol))
    chk.failure = rlxf::detail::concat("max |L - L_cudnn| = ", lse_err, " > tolerance ", lse_tol,
                                       " (log-sum-exp of the score rows)");
}

template <class T>
void check_backward(const Problem& p, Operands<T>& ops, Check& chk) {
  chk.tol = 8 * unit_roundoff<T>() + 1e-4;
  if (!reference_forward(p, ops, &chk.no_reference)) return;
  if (!cudnn_ready(p, ops, Pass::bwd, &chk.no_reference)) return;
  cuda::DeviceBuffer<T>* grads[] = {&ops.dq, &ops.dk, &ops.dv};
  const char* names[] = {"dQ", "dK", "dV"};
  const auto poison_grads = [&] {
    for (auto* g : grads) rlxf::bench::poison(*g, gpu->stream);
  };
  poison_grads();
  run_backward(Impl::cudnn, p, ops);
  std::vector<std::vector<T>> ref;
  for (auto* g : grads) ref.push_back(host_copy(*g));
  poison_grads();
  run_backward(Impl::ours, p, ops);
  for (int i = 0; i < 3; ++i) {
    const double e = max_rel_err<T>(host_copy(*grads[i]), ref[static_cast<std::size_t>(i)]);
    if (!(e <= chk.err) || std::isnan(e)) chk.err = e;  // keeps a NaN
    if (!(e <= chk.tol) && chk.failure.empty())
      chk.failure = rlxf::detail::concat("max |", names[i], " - ", names[i], "_cudnn| / max |", names[i],
                                         "_cudnn| = ", e, " > tolerance ", chk.tol);
    if (std::isnan(chk.err)) break;
  }
}

template <class T>
const Check& check_problem(const Problem& p, Pass pass, Operands<T>& ops) {
  const std::string key = rlxf::detail::concat(pass_name(pass), "/", problem_key<T>(p));
  if (auto it = checks.find(key); it != checks.end()) return it->second;
  Check chk;
  if (pass == Pass::fwd) check_forward(p, ops, chk);
  else check_backward(p, ops, chk);
  if (chk.no_reference.empty())  // cuDNN reference time: warm up, then the median of 5 timed blocks
    chk.cudnn_seconds = rlxf::bench::median_time(gpu->stream, p.reps(pass), pass_op(Impl::cudnn, pass, p, ops));
  return checks.emplace(key, chk).first->second;
}

// ---- the benchmark ----

template <class T>
void bench(benchmark::State& state, const Problem& p, Pass pass, Impl impl) {
  try {
    auto& ops = operands<T>(p);
    const Check& chk = check_problem<T>(p, pass, ops);
    if (!chk.no_reference.empty()) {
      const std::string msg =
          impl == Impl::cudnn
              ? rlxf::detail::concat("cuDNN cannot run this problem: ", chk.no_reference)
              : rlxf::detail::concat("not measured: no cuDNN reference to check against (", chk.no_reference, ")");
      state.SkipWithError(msg.c_str());
      return;
    }
    if (impl == Impl::ours && !chk.failure.empty()) {
      const std::string msg = rlxf::detail::concat("ours differs from cuDNN: ", chk.failure);
      state.SkipWithError(msg.c_str());
      return;
    }
    const int reps = p.reps(pass);
    const double seconds = rlxf::bench::run_timed(state, gpu->stream, reps, pass_op(impl, pass, p, ops));
    state.counters["TFLOP/s"] = p.flops(pass) / seconds * 1e-12;
    state.counters["vs_cudnn"] = chk.cudnn_seconds / seconds;
    state.counters["max_rel_err"] = impl == Impl::ours ? chk.err : 0.0;
    state.counters["reps"] = reps;
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
  }
}

template <class T>
void register_type() {
  for (const Problem& p : problems())
    for (Pass pass : {Pass::fwd, Pass::bwd})
      for (Impl impl : {Impl::cudnn, Impl::ours}) {
        const std::string name = rlxf::detail::concat("attention/", pass_name(pass), "/", type_name<T>(), "/d",
                                                      p.head_dim, "/", p.mask(), "/", p.dims(), "/", impl_name(impl));
        benchmark::RegisterBenchmark(name.c_str(),
                                     [p, pass, impl](benchmark::State& s) { bench<T>(s, p, pass, impl); })
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
}

}  // namespace

int main(int argc, char** argv) {
  rlxf::bench::Hooks hooks;
  hooks.register_benchmarks = [] {
    register_type<f16>();
    register_type<bf16>();
  };
  hooks.start = [](cuda::DeviceProperties props) { gpu = std::make_unique<Gpu>(std::move(props)); };
  hooks.stop = [] {
    if (release_operands) release_operands();
    gpu.reset();
  };
  return rlxf::bench::run_gpu_benchmarks(argc, argv, "bench_cuda_attention", hooks);
}
