#pragma once
// Layer normalisation on the GPU, the semantics of cpu/layernorm.hpp:
//   y = (x - mean) * rstd * gamma + beta,  rstd = 1 / sqrt(var + eps),
// mean and biased variance over the C channels of each row (two passes over the row held in
// registers, so |mean| >> std costs no accuracy). The backward, with xhat = (x - mean) rstd
// and g = dy gamma:
//   dx (+)= rstd (g - mean_c(g) - xhat mean_c(g xhat)),
//   dgamma += sum_rows dy xhat,  dbeta += sum_rows dy   (deterministic: norm_common.hpp).
// Storage T is f32 or bf16 (x, y, gamma, beta, dy, dx); mean, rstd, dgamma, dbeta and all
// arithmetic are f32. One block per row (forward) or per group of rows (backward).
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/elementwise/common.hpp"
#include "rlxf/cuda/elementwise/norm_common.hpp"

namespace rlxf::cuda {

template <class T>
struct LayerNormForwardParams {
  const T* x = nullptr;      // (N, C)
  const T* gamma = nullptr;  // (C)
  const T* beta = nullptr;   // (C), or nullptr: no bias
  T* y = nullptr;            // (N, C)
  float* mean = nullptr;     // (N), saved for the backward, or nullptr
  float* rstd = nullptr;     // (N), saved for the backward, or nullptr
  int N = 0, C = 0;
  float eps = 1e-5f;
};

// V: 128-bit chunks (vec128<T>) or scalars (1); layernorm_forward picks.
template <class T, int V>
struct LayerNormForward {
  using Traits = elementwise::NormForwardTraits<T, V>;
  using Params = LayerNormForwardParams<T>;
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
    auto sum_scratch = ctx.template shared<float>(0, warps, "ln_sum");
    auto sq_scratch = ctx.template shared<float>(scratch, warps, "ln_sq");
    for (long row = ctx.block_idx().x; row < p.N; row += ctx.grid_dim().x) {
      const T* x = p.x + row * C;
      T* y = p.y + row * C;
      float xs[chunks][V];
      float sum[1] = {0.0f};
      for_each_chunk<Traits>(C, t, threads, [&](int k, int col) {
        load<V>(ctx, x + col, xs[k]);
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) sum[0] += xs[k][i];
      }, [&](int col) {
        float v[V];
        load<V>(ctx, x + col, v);
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) sum[0] += v[i];
      });
      block_sum(ctx, sum, sum_scratch);
      const float mean = sum[0] / static_cast<float>(C);

      float sq[1] = {0.0f};
      for_each_chunk<Traits>(C, t, threads, [&](int k, int) {
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) sq[0] += (xs[k][i] - mean) * (xs[k][i] - mean);
      }, [&](int col) {
        float v[V];
        load<V>(ctx, x + col, v);
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) sq[0] += (v[i] - mean) * (v[i] - mean);
      });
      block_sum(ctx, sq, sq_scratch);
      const float rstd = math::rsqrt(sq[0] / static_cast<float>(C) + p.eps);

      auto normalise = [&](const float (&v)[V], int col) {
        float g[V], b[V], out[V];
        load<V>(ctx, p.gamma + col, g);
        if (p.beta) load<V>(ctx, p.beta + col, b);
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) out[i] = (v[i] - mean) * rstd * g[i] + (p.beta ? b[i] : 0.0f);
        store<V>(ctx, y + col, out);
      };
      for_each_chunk<Traits>(C, t, threads, [&](int k, int col) { normalise(xs[k], col); }, [&](int col) {
        float v[V];
        load<V>(ctx, x + col, v);
        normalise(v, col);
      });
      if (t == 0) {
        if (p.mean) p.mean[row] = mean;
        if (p.rstd) p.rstd[row] = rstd;
      }
    }
  }
};

template <class T>
struct LayerNormBackwardParams {
  const T* dy = nullptr;       // (N, C)
  const T* x = nullptr;        // (N, C)
  const T* gamma = nullptr;    // (C)
  const float* mean = nullptr;  // (N), from the forward
  const float* rstd = nullptr;  // (N), from the forward
  T* dx = nullptr;             // (N, C): += the input gradient (= with accumulate false)
  float* dgamma = nullptr;     // (C): += sum over rows of dy xhat
  float* dbeta = nullptr;      // (C): += sum over rows of dy, or nullptr (no bias)
  float* workspace = nullptr;  // layernorm_backward_workspace(N, C) floats, 16-byte aligned
  int N = 0, C = 0;
  bool accumulate = true;      // dx += (as the CPU backward) or dx = (dx may then hold NaN)
  int max_blocks = norm_backward_max_blocks;
};

// Floats of f32 workspace layernorm_backward needs: one (2C) row of partial sums per block.
inline long layernorm_backward_workspace(int N, int C, int max_blocks = norm_backward_max_blocks) {
  return static_cast<long>(norm_backward_grid(N, max_blocks).blocks) * 2 * C;
}

// dx of a group of rows and the group's partial sums of dy xhat and dy per column.
template <class T, int V>
struct LayerNormBackward {
  using Traits = elementwise::NormBackwardTraits<T, V>;
  using Params = LayerNormBackwardParams<T>;
  static constexpr int max_threads = Traits::max_threads;
  static constexpr int min_blocks = Traits::min_blocks;
  static constexpr int scratch = elementwise::scratch_bytes<Traits, 2>;
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
    float* dgamma_part = p.workspace + static_cast<long>(ctx.block_idx().x) * 2 * C;
    float* dbeta_part = dgamma_part + C;

    float dgamma_acc[chunks][V], dbeta_acc[chunks][V];
    const float zeros[V] = {};
    for_each_chunk<Traits>(C, t, threads, [&](int k, int) {
      RLXF_UNROLL
      for (int i = 0; i < V; ++i) dgamma_acc[k][i] = dbeta_acc[k][i] = 0.0f;
    }, [&](int col) {
      store<V>(ctx, dgamma_part + col, zeros);
      store<V>(ctx, dbeta_part + col, zeros);
    });

    for (long row = first; row < last; ++row) {
      const T* x = p.x + row * C;
      const T* dy = p.dy + row * C;
      T* dx = p.dx + row * C;
      const float mean = p.mean[row], rstd = p.rstd[row];
      float xs[chunks][V] = {}, dys[chunks][V] = {};  // = {}: g++ cannot see that the chunks fill them
      float sums[2] = {0.0f, 0.0f};  // sum g, sum g xhat
      auto add_sums = [&](const float (&xv)[V], const float (&dyv)[V], int col) {
        float g[V];
        load<V>(ctx, p.gamma + col, g);
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) {
          const float gi = dyv[i] * g[i];
          sums[0] += gi;
          sums[1] += gi * ((xv[i] - mean) * rstd);
        }
      };
      for_each_chunk<Traits>(C, t, threads, [&](int k, int col) {
        load<V>(ctx, x + col, xs[k]);
        load<V>(ctx, dy + col, dys[k]);
        add_sums(xs[k], dys[k], col);
      }, [&](int col) {
        float xv[V], dyv[V];
        load<V>(ctx, x + col, xv);
        load<V>(ctx, dy + col, dyv);
        add_sums(xv, dyv, col);
      });
      // Alternate rows use the two scratch arrays (see block_sum).
      block_sum(ctx, sums, ctx.template shared<float>((row - first) % 2 * scratch, 2 * warps, "ln_sums"));
      const float g_mean = sums[0] / static_cast<float>(C), gx_mean = sums[1] / static_cast<float>(C);

      // dx of the chunk at col; dgamma / dbeta partial sums into dg / db.
      auto grad = [&](const float (&xv)[V], const float (&dyv)[V], int col, float (&dg)[V], float (&db)[V]) {
        float g[V], out[V] = {};  // out is read only when accumulating
        load<V>(ctx, p.gamma + col, g);
        if (p.accumulate) load<V>(ctx, dx + col, out);
        RLXF_UNROLL
        for (int i = 0; i < V; ++i) {
          const float xhat = (xv[i] - mean) * rstd;
          const float d = rstd * (dyv[i] * g[i] - g_mean - xhat * gx_mean);
          out[i] = p.accumulate ? out[i] + d : d;
          dg[i] += dyv[i] * xhat;
          db[i] += dyv[i];
        }
        store<V>(ctx, dx + col, out);
      };
      for_each_chunk<Traits>(C, t, threads, [&](int k, int col) { grad(xs[k], dys[k], col, dgamma_acc[k], dbeta_acc[k]); },
                             [&](int col) {
                               float xv[V], dyv[V], dg[V], db[V];
                               load<V>(ctx, x + col, xv);
                               load<V>(ctx, dy + col, dyv);
                               load<V>(ctx, dgamma_part + col, dg);
                               load<V>(ctx, dbeta_part + col, db);
                               grad(xv, dyv, col, dg, db);
                               store<V>(ctx, dgamma_part + col, dg);
                               store<V>(ctx, dbeta_part + col, db);
                             });
    }
    for_each_chunk<Traits>(C, t, threads, [&](int k, int col) {
      store<V>(ctx, dgamma_part + col, dgamma_acc[k]);
      store<V>(ctx, dbeta_part + col, dbeta_acc[k]);
    }, [](int) {});
  }
};

// Layer-norm forward of p.N rows: picks 128-bit chunks when C is a multiple of the vector
// and every row array is 16-byte aligned, scalars otherwise. `launch` is a launcher (see
// KernelTag). Throws rlxf::Error for bad arguments, before any launch.
template <class T, class Launcher>
void layernorm_forward(const LayerNormForwardParams<T>& p, Launcher&& launch) {
  RLXF_REQUIRE(p.N >= 0 && p.C >= 1, "layernorm_forward: need N >= 0 rows and C >= 1 channels, got N = ", p.N,
               ", C = ", p.C);
  RLXF_REQUIRE(p.x && p.gamma && p.y, "layernorm_forward: x, gamma and y must not be null");
  if (p.N == 0) return;
  constexpr int V = vec128<T>;
  if (p.C % V == 0 && elementwise::all_aligned16(p.x, p.gamma, p.beta, p.y))
    launch(KernelTag<LayerNormForward<T, V>>{}, LayerNormForward<T, V>::launch_config(p), p);
  else
    launch(KernelTag<LayerNormForward<T, 1>>{}, LayerNormForward<T, 1>::launch_config(p), p);
}

// Layer-norm backward: the row kernel, then the column sums of its workspace into dgamma
// and dbeta (ParamGradReduce), in that order on the launcher's stream.
template <class T, class Launcher>
void layernorm_backward(const LayerNormBackwardParams<T>& p, Launcher&& launch) {
  RLXF_REQUIRE(p.N >= 0 && p.C >= 1, "layernorm_backward: need N >= 0 rows and C >= 1 channels, got N = ", p.N,
               ", C = ", p.C);
  RLXF_REQUIRE(p.dy && p.x && p.gamma && p.mean && p.rstd && p.dx && p.dgamma && p.workspace,
               "layernorm_backward: only dbeta may be null");
  RLXF_REQUIRE(elementwise::aligned16(p.workspace), "layernorm_backward: the workspace must be 16-byte aligned");
  if (p.N == 0) return;
  constexpr int V = vec128<T>;
  if (p.C % V == 0 && elementwise::all_aligned16(p.dy, p.x, p.gamma, p.dx))
    launch(KernelTag<LayerNormBackward<T, V>>{}, LayerNormBackward<T, V>::launch_config(p), p);
  else
    launch(KernelTag<LayerNormBackward<T, 1>>{}, LayerNormBackward<T, 1>::launch_config(p), p);
  const ParamGradReduceParams r{p.workspace, p.dgamma, p.dbeta, norm_backward_grid(p.N, p.max_blocks).blocks, p.C, 2};
  launch(KernelTag<ParamGradReduce>{}, ParamGradReduce::launch_config(r), r);
}

}  // namespace rlxf::cuda
