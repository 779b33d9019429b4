// Attention: speed and peak heap memory of the tiled CPU kernel (forward; forward + backward)
// against a naive forward that materialises each head's (T x T) score matrix. Batch 1, 12
// heads, head_dim 64, causal, float, T = 256 .. 4096.
//
// Counters (heap observed by replacing the global operator new/delete; sizes are
// malloc_usable_size, so they include the allocator's rounding):
//   tokens_per_s          T per wall-clock second of the call(s)
//   scratch_bytes         peak heap the call allocates on top of what was live before it
//   peak_bytes            inputs + outputs + scratch_bytes: the heap in use at the peak
//   peak_bytes_per_token  peak_bytes / T
// Inputs and outputs (q, k, v, o, lse; for backward also dout, dq, dk, dv) grow linearly
// with T. The tiled kernel's scratch is a few (query tile x key tile) buffers per running
// job, independent of T; the naive version's scratch is T x T per running job. Eigen's
// products allocate with malloc, which these counters do not see: at the kernel's tile sizes
// they keep their packing buffers on the stack (checked with EIGEN_RUNTIME_NO_MALLOC); the
// naive version's large products may malloc cache-sized packing buffers besides.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <new>
#include <span>
#include <vector>

#include <Eigen/Core>

#include "rlxf/core/rng.hpp"
#include "rlxf/core/threading.hpp"
#include "rlxf/cpu/attention.hpp"

namespace {

std::atomic<std::size_t> heap_live{0};
std::atomic<std::size_t> heap_peak{0};

void* note_allocation(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  const std::size_t n = malloc_usable_size(p);
  const std::size_t now = heap_live.fetch_add(n) + n;
  std::size_t peak = heap_peak.load();
  while (now > peak && !heap_peak.compare_exchange_weak(peak, now)) {
  }
  return p;
}

void note_release(void* p) noexcept {
  if (p == nullptr) return;
  heap_live.fetch_sub(malloc_usable_size(p));
  std::free(p);
}

}  // namespace

// Every other form (arrays, nothrow) forwards to these in libstdc++.
void* operator new(std::size_t n) { return note_allocation(std::malloc(std::max<std::size_t>(n, 1))); }
void* operator new(std::size_t n, std::align_val_t a) {
  const auto align = static_cast<std::size_t>(a);
  return note_allocation(std::aligned_alloc(align, (std::max<std::size_t>(n, 1) + align - 1) / align * align));
}
void operator delete(void* p) noexcept { note_release(p); }
void operator delete(void* p, std::size_t) noexcept { note_release(p); }
void operator delete(void* p, std::align_val_t) noexcept { note_release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { note_release(p); }

namespace {

using rlxf::cpu::AttentionOptions;
using rlxf::cpu::AttentionShape;

constexpr std::size_t heads = 12, head_dim = 64;

struct Tensors {
  explicit Tensors(std::size_t t, bool with_backward)
      : s{1, heads, heads, t, t, head_dim},
        q(t * heads * head_dim), k(q.size()), v(q.size()), o(q.size()), lse(t * heads) {
    rlxf::Rng rng(2024);
    rng.fill_normal(std::span<float>(q));
    rng.fill_normal(std::span<float>(k));
    rng.fill_normal(std::span<float>(v));
    if (with_backward) {
      dout.resize(q.size());
      rng.fill_normal(std::span<float>(dout));
      dq.resize(q.size());
      dk.resize(q.size());
      dv.resize(q.size());
    }
  }
  std::size_t bytes() const {
    return sizeof(float) * (q.size() + k.size() + v.size() + o.size() + lse.size() + dout.size() +
                            dq.size() + dk.size() + dv.size());
  }
  AttentionShape s;
  std::vector<float> q, k, v, o, lse, dout, dq, dk, dv;
};

// Runs `call` under the benchmark's timer and reports the counters described at the top.
template <class Call>
void measure(benchmark::State& state, const Tensors& x, Call&& call) {
  call();  // warm-up: OpenMP's thread pool, page faults
  std::size_t scratch = 0;
  for (auto _ : state) {
    const std::size_t before = heap_live.load();
    heap_peak.store(before);
    call();
    scratch = std::max(scratch, heap_peak.load() - before);
  }
  const auto t = static_cast<double>(x.s.q_len);
  const auto peak = static_cast<double>(x.bytes() + scratch);
  state.counters["tokens_per_s"] =
      benchmark::Counter(t * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["scratch_bytes"] = static_cast<double>(scratch);
  state.counters["peak_bytes"] = peak;
  state.counters["peak_bytes_per_token"] = peak / t;
}

const AttentionOptions causal{.causal = true};

void BM_tiled_forward(benchmark::State& state) {
  Tensors x(static_cast<std::size_t>(state.range(0)), false);
  measure(state, x, [&] {
    rlxf::cpu::attention_forward(x.q.data(), x.k.data(), x.v.data(), x.o.data(), x.lse.data(), x.s,
                                 causal);
  });
}

void BM_tiled_forward_backward(benchmark::State& state) {
  Tensors x(static_cast<std::size_t>(state.range(0)), true);
  measure(state, x, [&] {
    rlxf::cpu::attention_forward(x.q.data(), x.k.data(), x.v.data(), x.o.data(), x.lse.data(), x.s,
                                 causal);
    rlxf::cpu::attention_backward(x.q.data(), x.k.data(), x.v.data(), x.o.data(), x.lse.data(),
                                  x.dout.data(), x.dq.data(), x.dk.data(), x.dv.data(), x.s, causal);
  });
}

// The naive forward: per head, S = scale Q K^T materialised (T x T), causal mask, row
// softmax, O = P V. Same parallel split (one job per head) and Eigen products as the kernel.
void naive_forward(Tensors& x) {
  using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Map = Eigen::Map<Matrix>;
  using ConstMap = Eigen::Map<const Matrix>;
  const std::size_t t = x.s.q_len;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  rlxf::parallel_for(
      heads,
      [&](std::size_t h) {
        const std::size_t at = h * t * head_dim;
        std::vector<float> buffer(t * t);  // operator new, so the counters see it
        Map scores(buffer.data(), t, t);
        scores.noalias() = scale * ConstMap(x.q.data() + at, t, head_dim) *
                           ConstMap(x.k.data() + at, t, head_dim).transpose();
        for (std::size_t i = 0; i < t; ++i) {
          scores.row(i).tail(t - 1 - i).setConstant(-std::numeric_limits<float>::infinity());
          const float max = scores.row(i).maxCoeff();
          scores.row(i) = (scores.row(i).array() - max).exp();
          const float sum = scores.row(i).sum();
          scores.row(i) /= sum;
          x.lse[h * t + i] = max + std::log(sum);
        }
        Map(x.o.data() + at, t, head_dim).noalias() =
            scores * ConstMap(x.v.data() + at, t, head_dim);
      },
      1);
}

void BM_naive_forward(benchmark::State& state) {
  Tensors x(static_cast<std::size_t>(state.range(0)), false);
  measure(state, x, [&] { naive_forward(x); });
}

void sizes(benchmark::internal::Benchmark* b) {
  b->RangeMultiplier(2)->Range(256, 4096)->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

BENCHMARK(BM_tiled_forward)->Apply(sizes);
BENCHMARK(BM_tiled_forward_backward)->Apply(sizes);
BENCHMARK(BM_naive_forward)->Apply(sizes);

BENCHMARK_MAIN();
