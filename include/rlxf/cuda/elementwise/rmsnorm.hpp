#pragma once
// RMS normalisation on the GPU, the semantics of cpu/rmsnorm.hpp:
//   y = x * rstd * gamma,  rstd = 1 / sqrt(mean_c(x^2) + eps)
// over the C channels of each row. The backward, with g = dy gamma:
//   dx (+)= rstd (g - x rstd^2 mean_c(g x)),  dgamma += sum_rows dy x rstd
// (dgamma deterministic: norm_common.hpp). Storage T is f32 or bf16 (x, y, gamma, dy, dx);
// rstd, dgamma and all arithmetic are f32. One block per row (forward) or per group of rows
// (backward), as the layer norm.
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/elementwise/common.hpp"
#include "rlxf/cuda/elementwise/norm_common.hpp"

namespace rlxf::cuda {

template <class T>
struct RmsNormForwardParams {
  const T* x = nullptr;      // (N, C)
  const T* gamma = nullptr;  // (C)
  T* y = nullptr;            // (N, C)
  float* rstd = nullptr;     // (N), saved for the backward, or nullptr
  int N = 0, C = 0;
  float eps = 1e-6f;
};

// V: 128-bit chunks (vec128<T>) or scalars (1); rmsnorm_forward picks.
template <class T, int V>
struct RmsNormForward {
  using Traits = elementwise::NormForwardTraits<T, V>;
  using Params = RmsNormForwardParams<T>;
  static constexpr int max_threads = Traits::max_threads;
  static constexpr int min_blocks = Traits::min_blocks;
  static constexpr int scratch = elementwise::scratch_bytes<Traits, 1>;
  static constexpr int shared_bytes = 2 * scratch;

  static LaunchConfig launch_config(const Params& p) {
    return {{p.N, 1, 1}, {Traits::threads_for(p.C), 1, 1}, shared_bytes};
  }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    constexpr int chunks = Traits::chunks;
    const int t = ctx.thread_rank(), threads = ctx.block_dim().x, warps = threads / warp_size;
    const int C = p.C;
    int parity = 0;  // alternates the two scratch arrays (see block_sum)
    for (long row = ctx.block_idx().x; row < p.N; row += ctx.grid_dim().x, parity ^= 1) {
      const T* x = p.x + row * C;
      T* y = p.y + row * C;
      float xs[chunks][V];
      float sq[1] = {0.0f};
      for_each_chunk<Traits>(C, t, threads, [&](int k, int col) {
        load<V>(ctx, x + col, xs[k]);
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) sq[0] += xs[k][i] * xs[k][i];
      }, [&](int col) {
        float v[V];
        load<V>(ctx, x + col, v);
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) sq[0] += v[i] * v[i];
      });
      block_sum(ctx, sq, ctx.template shared<float>(parity * scratch, warps, "rms_sq"));
      const float rstd = math::rsqrt(sq[0] / static_cast<float>(C) + p.eps);

      auto normalise = [&](const float (&v)[V], int col) {
        float g[V], out[V];
        load<V>(ctx, p.gamma + col, g);
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) out[i] = v[i] * rstd * g[i];
        store<V>(ctx, y + col, out);
      };
      for_each_chunk<Traits>(C, t, threads, [&](int k, int col) { normalise(xs[k], col); }, [&](int col) {
        float v[V];
        load<V>(ctx, x + col, v);
        normalise(v, col);
      });
      if (t == 0 && p.rstd) p.rstd[row] = rstd;
    }
  }
};

template <class T>
struct RmsNormBackwardParams {
  const T* dy = nullptr;        // (N, C)
  const T* x = nullptr;         // (N, C)
  const T* gamma = nullptr;     // (C)
  const float* rstd = nullptr;  // (N), from the forward
  T* dx = nullptr;              // (N, C): += the input gradient (= with accumulate false)
  float* dgamma = nullptr;      // (C): += sum over rows of dy x rstd
  float* workspace = nullptr;   // rmsnorm_backward_workspace(N, C) floats, 16-byte aligned
  int N = 0, C = 0;
  bool accumulate = true;       // dx += (as the CPU backward) or dx = (dx may then hold NaN)
  int max_blocks = norm_backward_max_blocks;
};

// Floats of f32 workspace rmsnorm_backward needs: one (C) row of partial sums per block.
inline long rmsnorm_backward_workspace(int N, int C, int max_blocks = norm_backward_max_blocks) {
  return static_cast<long>(norm_backward_grid(N, max_blocks).blocks) * C;
}

// dx of a group of rows and the group's partial sums of dy x rstd per column.
template <class T, int V>
struct RmsNormBackward {
  using Traits = elementwise::NormBackwardTraits<T, V>;
  using Params = RmsNormBackwardParams<T>;
  static constexpr int max_threads = Traits::max_threads;
  static constexpr int min_blocks = Traits::min_blocks;
  static constexpr int scratch = elementwise::scratch_bytes<Traits, 1>;
  static constexpr int shared_bytes = 2 * scratch;

  static LaunchConfig launch_config(const Params& p) {
    return {{norm_backward_grid(p.N, p.max_blocks).blocks, 1, 1}, {Traits::threads_for(p.C), 1, 1}, shared_bytes};
  }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    constexpr int chunks = Traits::chunks;
    const int t = ctx.thread_rank(), threads = ctx.block_dim().x, warps = threads / warp_size;
    const int C = p.C;
    const int rows = norm_backward_rows_per_block(p.N, p.max_blocks);
    const long first = static_cast<long>(ctx.block_idx().x) * rows;
    const long last = first + rows < p.N ? first + rows : p.N;
    float* dgamma_part = p.workspace + static_cast<long>(ctx.block_idx().x) * C;

    float dgamma_acc[chunks][V];
    const float zeros[V] = {};
    for_each_chunk<Traits>(C, t, threads, [&](int k, int) {
      RLXF_UNROLL
      for (int i = 0; i < V; ++i) dgamma_acc[k][i] = 0.0f;
    }, [&](int col) { store<V>(ctx, dgamma_part + col, zeros); });

    for (long row = first; row < last; ++row) {
      const T* x = p.x + row * C;
      const T* dy = p.dy + row * C;
      T* dx = p.dx + row * C;
      const float rstd = p.rstd[row];
      float xs[chunks][V] = {}, dys[chunks][V] = {};  // = {}: g++ cannot see that the chunks fill them
      float gx[1] = {0.0f};  // sum dy gamma x
      auto add_sum = [&](const float (&xv)[V], const float (&dyv)[V], int col) {
        float g[V];
        load<V>(ctx, p.gamma + col, g);
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) gx[0] += dyv[i] * g[i] * xv[i];
      };
      for_each_chunk<Traits>(C, t, threads, [&](int k, int col) {
        load<V>(ctx, x + col, xs[k]);
        load<V>(ctx, dy + col, dys[k]);
        add_sum(xs[k], dys[k], col);
      }, [&](int col) {
        float xv[V], dyv[V];
        load<V>(ctx, x + col, xv);
        load<V>(ctx, dy + col, dyv);
        add_sum(xv, dyv, col);
      });
      // Alternate rows use the two scratch arrays (see block_sum).
      block_sum(ctx, gx, ctx.template shared<float>((row - first) % 2 * scratch, warps, "rms_gx"));
      const float scale = gx[0] / static_cast<float>(C) * rstd * rstd;

      // dx of the chunk at col; dgamma partial sums into dg.
      auto grad = [&](const float (&xv)[V], const float (&dyv)[V], int col, float (&dg)[V]) {
        float g[V], out[V] = {};  // out is read only when accumulating
        load<V>(ctx, p.gamma + col, g);
        if (p.accumulate) load<V>(ctx, dx + col, out);
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) {
          const float d = rstd * (dyv[i] * g[i] - xv[i] * scale);
          out[i] = p.accumulate ? out[i] + d : d;
          dg[i] += dyv[i] * xv[i] * rstd;
        }
        store<V>(ctx, dx + col, out);
      };
      for_each_chunk<Traits>(C, t, threads, [&](int k, int col) { grad(xs[k], dys[k], col, dgamma_acc[k]); },
                             [&](int col) {
                               float xv[V], dyv[V], dg[V];
                               load<V>(ctx, x + col, xv);
                               load<V>(ctx, dy + col, dyv);
                               load<V>(ctx, dgamma_part + col, dg);
                               grad(xv, dyv, col, dg);
                               store<V>(ctx, dgamma_part + col, dg);
                             });
    }
    for_each_chunk<Traits>(C, t, threads, [&](int k, int col) { store<V>(ctx, dgamma_part + col, dgamma_acc[k]); },
                           [](int) {});
  }
};

// RMS-norm forward of p.N rows: 128-bit chunks when C is a multiple of the vector and every
// row array is 16-byte aligned, scalars otherwise. Throws rlxf::Error for bad arguments.
template <class T, class Launcher>
void rmsnorm_forward(const RmsNormForwardParams<T>& p, Launcher&& launch) {
  RLXF_REQUIRE(p.N >= 0 && p.C >= 1, "rmsnorm_forward: need N >= 0 rows and C >= 1 channels, got N = ", p.N,
               ", C = ", p.C);
  RLXF_REQUIRE(p.x && p.gamma && p.y, "rmsnorm_forward: x, gamma and y must not be null");
  if (p.N == 0) return;
  constexpr int V = vec128<T>;
  if (p.C % V == 0 && elementwise::all_aligned16(p.x, p.gamma, p.y))
    launch(KernelTag<RmsNormForward<T, V>>{}, RmsNormForward<T, V>::launch_config(p), p);
  else
    launch(KernelTag<RmsNormForward<T, 1>>{}, RmsNormForward<T, 1>::launch_config(p), p);
}

// RMS-norm backward: the row kernel, then the column sums of its workspace into dgamma.
template <class T, class Launcher>
void rmsnorm_backward(const RmsNormBackwardParams<T>& p, Launcher&& launch) {
  RLXF_REQUIRE(p.N >= 0 && p.C >= 1, "rmsnorm_backward: need N >= 0 rows and C >= 1 channels, got N = ", p.N,
               ", C = ", p.C);
  RLXF_REQUIRE(p.dy && p.x && p.gamma && p.rstd && p.dx && p.dgamma && p.workspace,
               "rmsnorm_backward: no argument may be null");
  RLXF_REQUIRE(elementwise::aligned16(p.workspace), "rmsnorm_backward: the workspace must be 16-byte aligned");
  if (p.N == 0) return;
  constexpr int V = vec128<T>;
  if (p.C % V == 0 && elementwise::all_aligned16(p.dy, p.x, p.gamma, p.dx))
    launch(KernelTag<RmsNormBackward<T, V>>{}, RmsNormBackward<T, V>::launch_config(p), p);
  else
    launch(KernelTag<RmsNormBackward<T, 1>>{}, RmsNormBackward<T, 1>::launch_config(p), p);
  const ParamGradReduceParams r{p.workspace, p.dgamma, nullptr, norm_backward_grid(p.N, p.max_blocks).blocks, p.C, 1};
  launch(KernelTag<ParamGradReduce>{}, ParamGradReduce::launch_config(r), r);
}

}  // namespace rlxf::cuda
