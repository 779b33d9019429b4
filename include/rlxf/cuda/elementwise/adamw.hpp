#pragma once
// The AdamW update on the GPU, rlxf::optim::AdamW's (torch.optim.AdamW's) for one parameter
// tensor at step t = 1, 2, ... with gradient g:
//   m = beta1 m + (1 - beta1) g,   v = beta2 v + (1 - beta2) g^2,
//   m_hat = m / (1 - beta1^t),     v_hat = v / (1 - beta2^t),
//   p = p - lr (m_hat / (sqrt(v_hat) + eps) + wd p)
// with the decay term decoupled (applied to p, not added to g) and wd = 0 for parameters the
// optimizer's DecayRule excludes: elements [0, decayed) take wd, the rest 0, so an arena that
// packs the decaying parameters first is updated by one launch. The bias corrections and
// 1 - beta are computed in double on the host, as the CPU does, and rounded once to f32; the
// update itself is f32 (the CPU's is double, rounded once), so results agree to a few f32
// ulps. p, g, m and v are f32.
// Grid-stride over 128-bit vectors when all four arrays are 16-byte aligned.
#include <climits>
#include <cmath>
#include <cstddef>

#include "rlxf/core/error.hpp"
#include "rlxf/cuda/elementwise/common.hpp"
#include "rlxf/cuda/math.hpp"

namespace rlxf::cuda {

struct AdamWParams {
  float* param = nullptr;       // (n) updated in place
  const float* grad = nullptr;  // (n)
  float* m = nullptr;           // (n) first moment, updated in place
  float* v = nullptr;           // (n) second moment, updated in place
  long long n = 0;
  long long decayed = LLONG_MAX;  // elements [0, decayed) take weight_decay, the rest none
  float lr = 0, beta1 = 0, beta2 = 0, eps = 0, weight_decay = 0;
  float one_minus_beta1 = 0, one_minus_beta2 = 0;  // 1 - beta, from the doubles
  float correction1 = 1, correction2 = 1;          // 1 - beta1^t, 1 - beta2^t
};

// The update's scalars for step t (the step being taken, t >= 1) from an AdamW configuration
// (optim::AdamWConfig or anything with its double fields lr, beta1, beta2, eps,
// weight_decay), computed in double as optim::AdamW::step does. `decays` is the DecayRule's
// verdict for this parameter (false: weight decay 0). Pointers and n are left to the caller.
template <class Config>
AdamWParams adamw_params(const Config& cfg, std::size_t t, bool decays) {
  RLXF_REQUIRE(t >= 1, "adamw_params: the step t counts from 1");
  AdamWParams p;
  p.lr = static_cast<float>(cfg.lr);
  p.beta1 = static_cast<float>(cfg.beta1);
  p.beta2 = static_cast<float>(cfg.beta2);
  p.eps = static_cast<float>(cfg.eps);
  p.weight_decay = decays ? static_cast<float>(cfg.weight_decay) : 0.0f;
  p.one_minus_beta1 = static_cast<float>(1 - cfg.beta1);
  p.one_minus_beta2 = static_cast<float>(1 - cfg.beta2);
  p.correction1 = static_cast<float>(1 - std::pow(cfg.beta1, static_cast<double>(t)));
  p.correction2 = static_cast<float>(1 - std::pow(cfg.beta2, static_cast<double>(t)));
  return p;
}

template <int V>
struct AdamWUpdate {
  using Params = AdamWParams;
  static constexpr int max_threads = 256;
  static constexpr int min_blocks = 4;  // <= 64 registers: 4 blocks an SM (as activations.hpp)

  static LaunchConfig launch_config(const Params& p) {
    return {{elementwise::grid_stride_blocks((p.n + V - 1) / V, max_threads), 1, 1}, {max_threads, 1, 1}, 0};
  }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    for_each_element<V>(ctx, p.n, [&](auto width, long long i) {
      constexpr int W = decltype(width)::value;
      float w[W], g[W], m[W], v[W];
      load<W>(ctx, p.param + i, w);
      load<W>(ctx, p.grad + i, g);
      load<W>(ctx, p.m + i, m);
      load<W>(ctx, p.v + i, v);
      RLXF_UNROLL
      for (int k = 0; k < W; ++k) {
        m[k] = p.beta1 * m[k] + p.one_minus_beta1 * g[k];
        v[k] = p.beta2 * v[k] + p.one_minus_beta2 * g[k] * g[k];
        const float m_hat = m[k] / p.correction1;
        const float v_hat = v[k] / p.correction2;
        const float wd = i + k < p.decayed ? p.weight_decay : 0.0f;
        w[k] = w[k] - p.lr * (m_hat / (math::sqrt(v_hat) + p.eps) + wd * w[k]);
      }
      store<W>(ctx, p.param + i, w);
      store<W>(ctx, p.m + i, m);
      store<W>(ctx, p.v + i, v);
    });
  }
};

// One AdamW step of one parameter tensor (p from adamw_params plus the arrays).
template <class Launcher>
void adamw_update(const AdamWParams& p, Launcher&& launch) {
  RLXF_REQUIRE(p.n >= 0 && (p.n == 0 || (p.param && p.grad && p.m && p.v)),
               "adamw_update: null array or negative n = ", p.n);
  if (p.n == 0) return;
  if (elementwise::all_aligned16(p.param, p.grad, p.m, p.v)) elementwise::launch_kernel<AdamWUpdate<4>>(p, launch);
  else elementwise::launch_kernel<AdamWUpdate<1>>(p, launch);
}

}  // namespace rlxf::cuda
