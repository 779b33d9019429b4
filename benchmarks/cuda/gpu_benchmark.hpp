#pragma once
// What rlxf's GPU benchmarks (benchmarks/cuda/bench_cuda_*.cu) share: the main() that exits
// with status 2 without a usable GPU, CUDA-event timing reported through
// State::SetIterationTime, deterministic random operands, and the error measure of the
// correctness checks.
//
// Timing: each benchmark iteration records a CUDA event, queues `reps` back-to-back
// operations on one stream (reps_for: about 2e11 flops, a millisecond of GPU work at
// 200 TFLOP/s, clamped to [1, 64]), records a second event and reports elapsed / reps
// through State::SetIterationTime, so the reported time is that of one operation. Two
// untimed operations warm up each run.
//
// main (run_gpu_benchmarks): registers the benchmarks; --benchmark_list_tests works without
// a GPU; without a usable GPU the binary prints why (the "no usable GPU" error of
// cuda::require_device) and exits with status 2, so scripts can tell "no GPU here" (nothing
// measured, nothing wrong) from a failure (status 1).
#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <limits>
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

namespace rlxf::bench {

namespace cuda = rlxf::cuda;

// ---- element types ----

template <class T> constexpr const char* type_name() {
  if constexpr (std::is_same_v<T, f16>) return "f16";
  else if constexpr (std::is_same_v<T, bf16>) return "bf16";
  else return "f32";
}

template <class T> T from_float(float x) {
  if constexpr (std::is_same_v<T, float>) return x;
  else return T::from_float(x);
}

// Unit roundoff of T: 2^-11 (f16), 2^-8 (bf16), 2^-24 (f32).
template <class T> constexpr double unit_roundoff() {
  if constexpr (std::is_same_v<T, f16>) return 0x1p-11;
  else if constexpr (std::is_same_v<T, bf16>) return 0x1p-8;
  else return 0x1p-24;
}

// ---- operands ----

enum class Distribution { uniform, normal };  // uniform in [-1, 1), standard normal

// Deterministic values (splitmix64 of seed and index; normal by Box-Muller), rounded to T.
template <class T>
cuda::DeviceBuffer<T> random_buffer(std::size_t count, std::uint64_t seed, Distribution dist = Distribution::uniform) {
  const auto unit = [seed](std::uint64_t i) {  // [0, 1)
    std::uint64_t z = seed * 0x9e3779b97f4a7c15ull + i + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return static_cast<float>(z >> 40) * 0x1p-24f;
  };
  std::vector<T> host(count);
  for (std::size_t i = 0; i < count; ++i) {
    float x;
    if (dist == Distribution::uniform) {
      x = 2.0f * unit(i) - 1.0f;
    } else {
      const double u1 = 1.0 - unit(2 * static_cast<std::uint64_t>(i)), u2 = unit(2 * static_cast<std::uint64_t>(i) + 1);
      x = static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
    }
    host[i] = from_float<T>(x);
  }
  return cuda::DeviceBuffer<T>::from_host(std::span<const T>(host));
}

// Fills `buffer` with all-ones bytes, NaN in f32, f16 and bf16, on `stream`: an element a
// kernel fails to write cannot pass a check.
template <class T>
void poison(cuda::DeviceBuffer<T>& buffer, const cuda::Stream& stream) {
  cuda::check(cudaMemsetAsync(buffer.data(), 0xff, buffer.bytes(), stream.get()), "cudaMemsetAsync");
}

// max |got - ref| / max |ref| (max |got - ref| when ref is all zero); NaN if any difference is.
template <class T>
double max_rel_err(std::span<const T> got, std::span<const T> ref) {
  double max_diff = 0, max_ref = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const double r = static_cast<float>(ref[i]), g = static_cast<float>(got[i]);
    const double d = std::fabs(g - r);
    if (std::isnan(d)) return std::numeric_limits<double>::quiet_NaN();  // fails any tolerance
    max_diff = std::max(max_diff, d);
    max_ref = std::max(max_ref, std::fabs(r));
  }
  return max_ref > 0 ? max_diff / max_ref : max_diff;
}

// ---- timing ----

// Operations queued between two events: about 2e11 flops (a millisecond at 200 TFLOP/s).
inline int reps_for(double flops) { return static_cast<int>(std::clamp(2e11 / flops, 1.0, 64.0)); }

// Seconds of GPU time per operation: `reps` calls of `op` (which queue work on `stream`)
// between two events.
template <class F>
double time_block(const cuda::Stream& stream, int reps, F&& op) {
  cuda::Event start, stop;
  start.record(stream);
  for (int r = 0; r < reps; ++r) op();
  stop.record(stream);
  return cuda::Event::elapsed_ms(start, stop) * 1e-3 / reps;
}

// A reference time: two warm-up operations, then the median of 5 timed blocks.
template <class F>
double median_time(const cuda::Stream& stream, int reps, F&& op) {
  for (int i = 0; i < 2; ++i) op();
  std::vector<double> t;
  for (int i = 0; i < 5; ++i) t.push_back(time_block(stream, reps, op));
  std::nth_element(t.begin(), t.begin() + 2, t.end());
  return t[2];
}

// The benchmark loop: two warm-up operations, then one timed block of `reps` per iteration,
// reported through SetIterationTime (time of one operation). Returns the mean seconds per
// operation over all iterations.
template <class F>
double run_timed(benchmark::State& state, const cuda::Stream& stream, int reps, F&& op) {
  for (int i = 0; i < 2; ++i) op();
  double total = 0;
  long ops = 0;
  for (auto _ : state) {
    const double s = time_block(stream, reps, op);
    state.SetIterationTime(s);
    total += s * reps;
    ops += reps;
  }
  return total / static_cast<double>(std::max(ops, 1L));
}

// ---- main ----

inline bool wants_list_only(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--benchmark_list_tests" || a == "--benchmark_list_tests=true" || a == "--benchmark_list_tests=1")
      return true;
  }
  return false;
}

struct Hooks {
  std::function<void()> register_benchmarks;                 // before anything else
  std::function<void(cuda::DeviceProperties)> start;         // device 0 is usable: create the GPU state
  std::function<void()> stop;                                // free device memory and handles (always called
                                                             // after start, before the runtime shuts down)
};

// The benchmark binary's main. Exit status 0: ran (a benchmark that failed its check is
// reported as an error in the output); 2: no usable GPU, nothing was run; 1: any other failure.
inline int run_gpu_benchmarks(int argc, char** argv, const char* name, const Hooks& hooks) {
  const bool list_only = wants_list_only(argc, argv);  // before Initialize removes the flag
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  hooks.register_benchmarks();
  if (list_only) {  // listing needs no GPU
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
  }

  cuda::DeviceProperties props;
  try {
    props = cuda::require_device(0);
  } catch (const std::exception& e) {
    const bool no_gpu = cuda::device_count() == 0;
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    if (no_gpu)
      std::fprintf(stderr, "%s needs a CUDA GPU (sm_80 or sm_90 builds); no benchmark was run (exit status 2).\n", name);
    else
      std::fprintf(stderr, "%s could not use GPU 0; no benchmark was run.\n", name);
    return no_gpu ? 2 : 1;
  }
  int rt = 0;
  cuda::check(cudaRuntimeGetVersion(&rt), "cudaRuntimeGetVersion");
  benchmark::AddCustomContext("gpu", props.name);
  benchmark::AddCustomContext("gpu_sm", std::to_string(props.sm()));
  benchmark::AddCustomContext("gpu_sm_count", std::to_string(props.sm_count));
  benchmark::AddCustomContext("gpu_sm_clock_mhz", std::to_string(props.sm_clock_khz / 1000));
  benchmark::AddCustomContext("cuda_driver", std::to_string(props.driver_version));
  benchmark::AddCustomContext("cuda_runtime", std::to_string(rt));
  int rc = 0;
  try {
    hooks.start(std::move(props));
    benchmark::RunSpecifiedBenchmarks();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", argv[0], e.what());
    rc = 1;
  }
  hooks.stop();  // device memory and handles go before the CUDA runtime shuts down
  benchmark::Shutdown();
  return rc;
}

}  // namespace rlxf::bench
