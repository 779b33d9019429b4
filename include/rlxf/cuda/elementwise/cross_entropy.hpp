#pragma once
// Softmax cross-entropy on the GPU, the semantics of cpu::cross_entropy_forward / _backward
// (cpu/softmax.hpp), over logits times a scale s (1, or 1 / temperature for the token
// log-probs of cpu::token_logprobs_forward / _backward), z = s logits:
//   forward:  lse[i] = log sum_j exp(z[i, j]),  losses[i] = lse[i] - z[i, t_i]
//             (computed as log_sum - (z[i, t_i] - max), exact for nearby logits), or its
//             negation, the log-prob, with `negate`; rows whose target is ignore_index get 0
//             (lse is still written); entropy[i] = lse[i] - sum_j softmax(z[i])_j z[i, j]
//             when asked for (a second pass over the row, after lse).
//   backward: dlogits[i] (+)= g dlosses[i] (softmax(z[i]) - onehot(t_i)) for rows not
//             ignored, softmax = exp(z - lse), g = grad_scale (1; -1 / temperature for the
//             gradient of the log-probs).
// Where the CPU throws for a target outside [0, V) that is not ignore_index, the kernels
// write NaN (the row's loss, or its whole gradient row). The number of rows not ignored,
// which the CPU forward returns, is the caller's to count.
// Storage of logits / dlogits is f32 or bf16; losses, lse, dlosses and all math are f32.
// One block per row; each thread keeps a running (max, sum of exp(x - max)) over its
// elements (one read of the row, online softmax), combined across the block.
#include <cstdint>

#include "rlxf/core/error.hpp"
#include "rlxf/cuda/elementwise/common.hpp"
#include "rlxf/cuda/math.hpp"

namespace rlxf::cuda {

namespace elementwise {

// A running log-sum-exp: max and sum of exp(x - max) over the values seen (max = -inf and
// sum = 0 for none, or only -inf values).
struct LogSumExp {
  float max = -math::infinity();
  float sum = 0.0f;
};

// exp(from - to) for to >= from, exactly 1 when they are equal (both -inf included).
RLXF_HOST_DEVICE float rescale(float from, float to) { return from == to ? 1.0f : math::exp(from - to); }

// The log-sum-exp of two sets from theirs (symmetric in a and b).
RLXF_HOST_DEVICE LogSumExp combine(LogSumExp a, LogSumExp b) {
  const float m = math::max(a.max, b.max);
  if (m == -math::infinity()) return {m, 0.0f};
  return {m, a.sum * rescale(a.max, m) + b.sum * rescale(b.max, m)};
}

// Adds W values to a running log-sum-exp: one rescale of the running sum per chunk.
template <int W>
RLXF_HOST_DEVICE void accumulate(LogSumExp& acc, const float (&v)[W]) {
  float m = acc.max;
  RLXF_UNROLL
  for (int k = 0; k < W; ++k) m = math::max(m, v[k]);
  if (m == -math::infinity()) return;
  float sum = acc.sum * rescale(acc.max, m);
  RLXF_UNROLL
  for (int k = 0; k < W; ++k) sum += math::exp(v[k] - m);
  acc = {m, sum};
}

// Threads for a row of `vocab` logits: one a vector when the row is short, whole warps, at
// most 512 (at V = 50257 each thread takes ~25 vectors of f32, enough to hide latency).
template <class T>
inline int cross_entropy_threads(int vocab) {
  const int vectors = ceil_div(vocab, vec128<T>);
  const int t = ceil_div(vectors, warp_size) * warp_size;
  return t < warp_size ? warp_size : t > 512 ? 512 : t;
}

}  // namespace elementwise

template <class T>
struct CrossEntropyForwardParams {
  const T* logits = nullptr;             // (N, vocab)
  const std::int32_t* targets = nullptr;  // (N)
  float* losses = nullptr;               // (N)
  float* lse = nullptr;                  // (N): log-sum-exp of each row, for the backward
  int N = 0, vocab = 0;
  std::int32_t ignore_index = -100;
  float* entropy = nullptr;  // (N), or nullptr: the entropy of each row's softmax
  float scale = 1.0f;   // z = scale * logits
  bool negate = false;  // losses[i] = z[t_i] - lse (the log-prob) instead
};

// V: 128-bit vectors (vec128<T>) after a scalar head up to each row's first 16-byte
// boundary, or scalars (1).
template <class T, int V>
struct CrossEntropyForward {
  static_assert(ElementwiseStorage<T>);
  using Params = CrossEntropyForwardParams<T>;
  static constexpr int max_threads = 512;
  static constexpr int min_blocks = 2;  // <= 64 registers: two 512-thread blocks an SM
  static constexpr int max_warps = max_threads / warp_size;
  static constexpr int scratch = 2 * max_warps * 4;  // (max, sum) per warp
  static constexpr int shared_bytes = 2 * scratch + 16;  // + the row's lse, broadcast for the entropy

  static LaunchConfig launch_config(const Params& p) {
    return {{p.N, 1, 1}, {elementwise::cross_entropy_threads<T>(p.vocab), 1, 1}, shared_bytes};
  }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    const int t = ctx.thread_rank(), threads = ctx.block_dim().x, warps = threads / warp_size;
    int parity = 0;  // alternates the two scratch arrays (as block_sum does)
    for (long row = ctx.block_idx().x; row < p.N; row += ctx.grid_dim().x, parity ^= 1) {
      const T* x = p.logits + row * p.vocab;
      LogSumExp acc;
      for_each_in_row<V>(ctx, x, p.vocab, t, threads, [&](auto width, int j) {
        constexpr int W = decltype(width)::value;
        float v[W];
        load<W>(ctx, x + j, v);
        RLXF_UNROLL
        for (int k = 0; k < W; ++k) v[k] *= p.scale;
        accumulate(acc, v);
      });
      // Within the warp: butterfly; across warps: lane 0s through shared memory, combined
      // by thread 0 in warp order.
      for (int mask = warp_size / 2; mask > 0; mask /= 2) {
        const LogSumExp other{ctx.shfl_xor(acc.max, mask), ctx.shfl_xor(acc.sum, mask)};
        acc = combine(acc, other);
      }
      if (warps > 1) {
        auto s = ctx.template shared<float>(parity * scratch, 2 * warps, "ce_lse");
        if (ctx.lane() == 0) {
          s[2 * ctx.warp()] = acc.max;
          s[2 * ctx.warp() + 1] = acc.sum;
        }
        ctx.sync();
        if (t == 0) {
          acc = {s[0], s[1]};
          for (int w = 1; w < warps; ++w) acc = combine(acc, {s[2 * w], s[2 * w + 1]});
        }
      }
      if (t == 0) {
        const float log_sum = math::log(acc.sum);
        p.lse[row] = acc.max + log_sum;
        const std::int32_t target = p.targets[row];
        float loss = 0.0f;
        if (target != p.ignore_index) {
          loss = target < 0 || target >= p.vocab ? math::quiet_nan()
                                                 : log_sum - (p.scale * to_float(x[target]) - acc.max);
        }
        p.losses[row] = p.negate ? -loss : loss;
      }
      if (p.entropy) {  // uniform over the block: every thread takes this branch or none does
        auto lse_slot = ctx.template shared<float>(2 * scratch, 1, "ce_row_lse");
        if (t == 0) lse_slot[0] = p.lse[row];
        ctx.sync();
        const float lse = lse_slot[0];
        float mean_z[1] = {0.0f};  // this thread's share of sum_j softmax(z)_j z_j
        for_each_in_row<V>(ctx, x, p.vocab, t, threads, [&](auto width, int j) {
          constexpr int W = decltype(width)::value;
          float v[W];
          load<W>(ctx, x + j, v);
          RLXF_UNROLL
          for (int k = 0; k < W; ++k) {
            const float z = p.scale * v[k];
            mean_z[0] += math::exp(z - lse) * z;
          }
        });
        block_sum(ctx, mean_z, ctx.template shared<float>(parity * scratch, warps, "ce_entropy"));
        if (t == 0) p.entropy[row] = lse - mean_z[0];
        ctx.sync();  // the slots are reused by the next row
      }
    }
  }
};

template <class T>
struct CrossEntropyBackwardParams {
  const T* logits = nullptr;              // (N, vocab)
  const std::int32_t* targets = nullptr;  // (N)
  const float* lse = nullptr;             // (N), from the forward
  const float* dlosses = nullptr;         // (N), or nullptr: every row's dloss is `dloss`
  float dloss = 1.0f;                     // the gradient of every row's loss without dlosses
  T* dlogits = nullptr;                   // (N, vocab): += the gradient (= with accumulate false;
                                          // ignored rows then get 0)
  int N = 0, vocab = 0;
  std::int32_t ignore_index = -100;
  bool accumulate = true;
  float scale = 1.0f;       // z = scale * logits, as in the forward
  float grad_scale = 1.0f;  // multiplies every row's gradient
};

template <class T, int V>
struct CrossEntropyBackward {
  static_assert(ElementwiseStorage<T>);
  using Params = CrossEntropyBackwardParams<T>;
  static constexpr int max_threads = 512;
  static constexpr int min_blocks = 2;  // <= 64 registers: two 512-thread blocks an SM

  static LaunchConfig launch_config(const Params& p) {
    return {{p.N, 1, 1}, {elementwise::cross_entropy_threads<T>(p.vocab), 1, 1}, 0};
  }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    const int t = ctx.thread_rank(), threads = ctx.block_dim().x;
    for (long row = ctx.block_idx().x; row < p.N; row += ctx.grid_dim().x) {
      const T* x = p.logits + row * p.vocab;
      T* dx = p.dlogits + row * p.vocab;
      const std::int32_t target = p.targets[row];
      const bool ignored = target == p.ignore_index;
      if (ignored && p.accumulate) continue;
      const bool bad = !ignored && (target < 0 || target >= p.vocab);
      // An ignored row (overwriting) gets 0; a bad target poisons the row.
      const float dl =
          ignored ? 0.0f : bad ? math::quiet_nan() : p.grad_scale * (p.dlosses ? p.dlosses[row] : p.dloss);
      const float lse = p.lse[row];
      for_each_in_row<V>(ctx, x, p.vocab, t, threads, [&](auto width, int j) {
        constexpr int W = decltype(width)::value;
        float v[W], d[W] = {};  // d is read only when accumulating
        load<W>(ctx, x + j, v);
        if (p.accumulate) load<W>(ctx, dx + j, d);
        RLXF_UNROLL
        for (int k = 0; k < W; ++k) {
          const float prob = ignored ? 0.0f : math::exp(p.scale * v[k] - lse);
          const float g = dl * (j + k == target ? prob - 1.0f : prob);
          d[k] = p.accumulate ? d[k] + g : g;
        }
        store<W>(ctx, dx + j, d);
      });
    }
  }
};

// Per-row losses and log-sum-exps of p.N rows of logits. Throws rlxf::Error for bad
// arguments (before any launch); bad targets give NaN losses (the targets live on the
// device, so the host cannot check them).
template <class T, class Launcher>
void cross_entropy_forward(const CrossEntropyForwardParams<T>& p, Launcher&& launch) {
  using elementwise::launch_kernel;
  RLXF_REQUIRE(p.N >= 0 && p.vocab >= 1, "cross_entropy_forward: need N >= 0 rows and vocab >= 1, got N = ", p.N,
               ", vocab = ", p.vocab);
  RLXF_REQUIRE(p.N == 0 || (p.logits && p.targets && p.losses && p.lse),
               "cross_entropy_forward: logits, targets, losses and lse must not be null");
  if (p.N == 0) return;
  // Vector accesses after each row's scalar head: rows start at every offset, nothing else
  // to check (elements of T are always T-aligned).
  launch_kernel<CrossEntropyForward<T, vec128<T>>>(p, launch);
}

// dlogits (+)= dlosses (softmax - onehot) for every row not ignored. 128-bit accesses need
// logits and dlogits at the same offset modulo 16 bytes (true for cudaMalloc'd buffers of
// the same type), else scalars.
template <class T, class Launcher>
void cross_entropy_backward(const CrossEntropyBackwardParams<T>& p, Launcher&& launch) {
  using elementwise::launch_kernel;
  RLXF_REQUIRE(p.N >= 0 && p.vocab >= 1, "cross_entropy_backward: need N >= 0 rows and vocab >= 1, got N = ", p.N,
               ", vocab = ", p.vocab);
  RLXF_REQUIRE(p.N == 0 || (p.logits && p.targets && p.lse && p.dlogits),
               "cross_entropy_backward: logits, targets, lse and dlogits must not be null");
  if (p.N == 0) return;
  if (reinterpret_cast<std::uintptr_t>(p.logits) % 16 == reinterpret_cast<std::uintptr_t>(p.dlogits) % 16)
    launch_kernel<CrossEntropyBackward<T, vec128<T>>>(p, launch);
  else
    launch_kernel<CrossEntropyBackward<T, 1>>(p, launch);
}

}  // namespace rlxf::cuda
