#pragma once
// Elementwise activations on the GPU, the semantics of cpu/activations.hpp: GELU (tanh
// approximation and exact), SwiGLU and tanh (BERT's pooler), forward and backward. Storage T is f32 or bf16, math
// f32. Every array holds n elements (any n); each backward ADDS into its input gradients as
// the CPU does, or overwrites them with accumulate = false (then an output may alias dy).
// Grid-stride loops over 128-bit vectors when every array is 16-byte aligned (the last
// n % vec elements scalar), scalars otherwise.
#include "rlxf/core/backend.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/elementwise/common.hpp"
#include "rlxf/cuda/math.hpp"

namespace rlxf::cuda {

// The two GELU forms (core/backend.hpp).
using rlxf::GeluForm;

namespace elementwise {

inline constexpr float sqrt_2_over_pi = 0.7978845608028654f;  // sqrt(2 / pi)
inline constexpr float inv_sqrt2 = 0.7071067811865476f;       // 1 / sqrt(2)
inline constexpr float inv_sqrt_2pi = 0.3989422804014327f;    // 1 / sqrt(2 pi)
inline constexpr float gelu_cubic = 0.044715f;

RLXF_HOST_DEVICE float sigmoid(float x) { return 1.0f / (1.0f + math::exp(-x)); }

// sigmoid(z) and sigmoid(-z) = 1 - sigmoid(z) from one exponential of -|z| (no overflow,
// no cancellation): with a = exp(-|z|), they are 1 / (1 + a) and a / (1 + a).
RLXF_HOST_DEVICE void sigmoid_pair(float z, float& plus, float& minus) {
  const float a = math::exp(-(z < 0.0f ? -z : z));
  const float big = 1.0f / (1.0f + a), small = a * big;
  plus = z >= 0.0f ? big : small;
  minus = z >= 0.0f ? small : big;
}

// gelu(x), both forms written without cancellation at negative x: 0.5 (1 + tanh u) =
// sigmoid(2u) and 0.5 (1 + erf z) = 0.5 erfc(-z).
template <GeluForm Form>
RLXF_HOST_DEVICE float gelu(float x) {
  if constexpr (Form == GeluForm::tanh) {
    return x * sigmoid(2.0f * sqrt_2_over_pi * (x + gelu_cubic * x * x * x));
  } else {
    return 0.5f * x * math::erfc(-x * inv_sqrt2);
  }
}

// gelu'(x). tanh: with u = sqrt(2/pi) (x + c x^3) and s = sigmoid(2u), gelu = x s and
// gelu' = s + 2 x s (1 - s) u', u' = sqrt(2/pi) (1 + 3 c x^2). exact: Phi(x) + x phi(x).
template <GeluForm Form>
RLXF_HOST_DEVICE float gelu_derivative(float x) {
  if constexpr (Form == GeluForm::tanh) {
    const float u = sqrt_2_over_pi * (x + gelu_cubic * x * x * x);
    float s, s_minus;
    sigmoid_pair(2.0f * u, s, s_minus);
    const float du = sqrt_2_over_pi * (1.0f + 3.0f * gelu_cubic * x * x);
    return s + 2.0f * x * s * s_minus * du;
  } else {
    const float cdf = 0.5f * math::erfc(-x * inv_sqrt2);
    const float pdf = inv_sqrt_2pi * math::exp(-0.5f * x * x);
    return cdf + x * pdf;
  }
}

// The elementwise kernels' launch shape: 256 threads (8 warps; any count works for a
// grid-stride loop) and __launch_bounds__(256, 4): at most 64 registers a thread, so at
// least 4 blocks (1024 threads, half of an SM's 2048) are resident on sm_80 / sm_90, enough
// 128-bit loads in flight for a memory-bound loop. Unbounded, the 8-wide bf16 exact-GELU
// backward took 91 registers (2 blocks an SM).
inline constexpr int elementwise_threads = 256;
inline constexpr int elementwise_min_blocks = 4;

template <int V>
LaunchConfig elementwise_config(long long n) {
  return {{grid_stride_blocks((n + V - 1) / V, elementwise_threads), 1, 1}, {elementwise_threads, 1, 1}, 0};
}

}  // namespace elementwise

template <class T>
struct GeluForwardParams {
  const T* x = nullptr;  // (n)
  T* y = nullptr;        // (n); may be x (in place)
  long long n = 0;
};

// y = gelu(x). V: 128-bit vectors (vec128<T>) or scalars (1).
template <class T, int V, GeluForm Form>
struct GeluForward {
  static_assert(ElementwiseStorage<T>);
  using Params = GeluForwardParams<T>;
  static constexpr int max_threads = elementwise::elementwise_threads;
  static constexpr int min_blocks = elementwise::elementwise_min_blocks;
  static LaunchConfig launch_config(const Params& p) { return elementwise::elementwise_config<V>(p.n); }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    for_each_element<V>(ctx, p.n, [&](auto width, long long i) {
      constexpr int W = decltype(width)::value;
      float v[W];
      load<W>(ctx, p.x + i, v);
      RLXF_UNROLL
      for (int k = 0; k < W; ++k) v[k] = gelu<Form>(v[k]);
      store<W>(ctx, p.y + i, v);
    });
  }
};

template <class T>
struct GeluBackwardParams {
  const T* x = nullptr;   // (n): the forward's input
  const T* dy = nullptr;  // (n)
  T* dx = nullptr;        // (n): += dy gelu'(x) (= with accumulate false)
  long long n = 0;
  bool accumulate = true;
};

template <class T, int V, GeluForm Form>
struct GeluBackward {
  static_assert(ElementwiseStorage<T>);
  using Params = GeluBackwardParams<T>;
  static constexpr int max_threads = elementwise::elementwise_threads;
  static constexpr int min_blocks = elementwise::elementwise_min_blocks;
  static LaunchConfig launch_config(const Params& p) { return elementwise::elementwise_config<V>(p.n); }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    for_each_element<V>(ctx, p.n, [&](auto width, long long i) {
      constexpr int W = decltype(width)::value;
      float x[W], dy[W], dx[W] = {};  // dx is read only when accumulating
      load<W>(ctx, p.x + i, x);
      load<W>(ctx, p.dy + i, dy);
      if (p.accumulate) load<W>(ctx, p.dx + i, dx);
      RLXF_UNROLL
      for (int k = 0; k < W; ++k) {
        const float d = dy[k] * gelu_derivative<Form>(x[k]);
        dx[k] = p.accumulate ? dx[k] + d : d;
      }
      store<W>(ctx, p.dx + i, dx);
    });
  }
};

template <class T>
struct SwiGluForwardParams {
  const T* gate = nullptr;  // (n)
  const T* up = nullptr;    // (n)
  T* y = nullptr;           // (n): silu(gate) up; may alias gate or up
  long long n = 0;
};

// y = gate sigmoid(gate) up.
template <class T, int V>
struct SwiGluForward {
  static_assert(ElementwiseStorage<T>);
  using Params = SwiGluForwardParams<T>;
  static constexpr int max_threads = elementwise::elementwise_threads;
  static constexpr int min_blocks = elementwise::elementwise_min_blocks;
  static LaunchConfig launch_config(const Params& p) { return elementwise::elementwise_config<V>(p.n); }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    for_each_element<V>(ctx, p.n, [&](auto width, long long i) {
      constexpr int W = decltype(width)::value;
      float g[W], u[W];
      load<W>(ctx, p.gate + i, g);
      load<W>(ctx, p.up + i, u);
      RLXF_UNROLL
      for (int k = 0; k < W; ++k) g[k] = g[k] * sigmoid(g[k]) * u[k];
      store<W>(ctx, p.y + i, g);
    });
  }
};

template <class T>
struct SwiGluBackwardParams {
  const T* gate = nullptr;  // (n)
  const T* up = nullptr;    // (n)
  const T* dy = nullptr;    // (n)
  T* dgate = nullptr;       // (n): += dy up silu'(gate), silu' = s (1 + gate (1 - s))
  T* dup = nullptr;         // (n): += dy silu(gate)
  long long n = 0;
  bool accumulate = true;
};

template <class T, int V>
struct SwiGluBackward {
  static_assert(ElementwiseStorage<T>);
  using Params = SwiGluBackwardParams<T>;
  static constexpr int max_threads = elementwise::elementwise_threads;
  static constexpr int min_blocks = elementwise::elementwise_min_blocks;
  static LaunchConfig launch_config(const Params& p) { return elementwise::elementwise_config<V>(p.n); }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    for_each_element<V>(ctx, p.n, [&](auto width, long long i) {
      constexpr int W = decltype(width)::value;
      float g[W], u[W], dy[W], dg[W] = {}, du[W] = {};  // read only when accumulating
      load<W>(ctx, p.gate + i, g);
      load<W>(ctx, p.up + i, u);
      load<W>(ctx, p.dy + i, dy);
      if (p.accumulate) {
        load<W>(ctx, p.dgate + i, dg);
        load<W>(ctx, p.dup + i, du);
      }
      RLXF_UNROLL
      for (int k = 0; k < W; ++k) {
        const float s = sigmoid(g[k]);
        const float d_gate = dy[k] * u[k] * s * (1.0f + g[k] * (1.0f - s));
        const float d_up = dy[k] * g[k] * s;
        dg[k] = p.accumulate ? dg[k] + d_gate : d_gate;
        du[k] = p.accumulate ? du[k] + d_up : d_up;
      }
      store<W>(ctx, p.dgate + i, dg);
      store<W>(ctx, p.dup + i, du);
    });
  }
};

template <class T>
struct TanhParams {
  const T* x = nullptr;   // forward: the input; backward: the forward's output y = tanh(x)
  const T* dy = nullptr;  // backward only (n)
  T* out = nullptr;       // forward: y (may be x); backward: dx += dy (1 - y^2) (= without accumulate)
  long long n = 0;
  bool accumulate = true;
};

// Backward = false: out = tanh(x); true: out (+)= dy (1 - x^2), x the forward's output.
template <class T, int V, bool Backward>
struct Tanh {
  static_assert(ElementwiseStorage<T>);
  using Params = TanhParams<T>;
  static constexpr int max_threads = elementwise::elementwise_threads;
  static constexpr int min_blocks = elementwise::elementwise_min_blocks;
  static LaunchConfig launch_config(const Params& p) { return elementwise::elementwise_config<V>(p.n); }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    for_each_element<V>(ctx, p.n, [&](auto width, long long i) {
      constexpr int W = decltype(width)::value;
      float x[W];
      load<W>(ctx, p.x + i, x);
      if constexpr (Backward) {
        float dy[W], dx[W] = {};  // dx is read only when accumulating
        load<W>(ctx, p.dy + i, dy);
        if (p.accumulate) load<W>(ctx, p.out + i, dx);
        RLXF_UNROLL
        for (int k = 0; k < W; ++k) {
          const float d = dy[k] * (1.0f - x[k] * x[k]);
          dx[k] = p.accumulate ? dx[k] + d : d;
        }
        store<W>(ctx, p.out + i, dx);
      } else {
        RLXF_UNROLL
        for (int k = 0; k < W; ++k) x[k] = math::tanh(x[k]);
        store<W>(ctx, p.out + i, x);
      }
    });
  }
};

// y = gelu(x) in the given form. Throws rlxf::Error for bad arguments, before any launch.
template <class T, class Launcher>
void gelu_forward(const GeluForwardParams<T>& p, GeluForm form, Launcher&& launch) {
  using elementwise::launch_kernel;
  RLXF_REQUIRE(p.n >= 0 && (p.n == 0 || (p.x && p.y)), "gelu_forward: null array or negative n = ", p.n);
  if (p.n == 0) return;
  constexpr int V = vec128<T>;
  const bool vec = elementwise::all_aligned16(p.x, p.y);
  if (form == GeluForm::tanh) {
    if (vec) launch_kernel<GeluForward<T, V, GeluForm::tanh>>(p, launch);
    else launch_kernel<GeluForward<T, 1, GeluForm::tanh>>(p, launch);
  } else {
    if (vec) launch_kernel<GeluForward<T, V, GeluForm::exact>>(p, launch);
    else launch_kernel<GeluForward<T, 1, GeluForm::exact>>(p, launch);
  }
}

// dx (+)= dy gelu'(x) in the given form.
template <class T, class Launcher>
void gelu_backward(const GeluBackwardParams<T>& p, GeluForm form, Launcher&& launch) {
  using elementwise::launch_kernel;
  RLXF_REQUIRE(p.n >= 0 && (p.n == 0 || (p.x && p.dy && p.dx)), "gelu_backward: null array or negative n = ", p.n);
  if (p.n == 0) return;
  constexpr int V = vec128<T>;
  const bool vec = elementwise::all_aligned16(p.x, p.dy, p.dx);
  if (form == GeluForm::tanh) {
    if (vec) launch_kernel<GeluBackward<T, V, GeluForm::tanh>>(p, launch);
    else launch_kernel<GeluBackward<T, 1, GeluForm::tanh>>(p, launch);
  } else {
    if (vec) launch_kernel<GeluBackward<T, V, GeluForm::exact>>(p, launch);
    else launch_kernel<GeluBackward<T, 1, GeluForm::exact>>(p, launch);
  }
}

// y = silu(gate) up.
template <class T, class Launcher>
void swiglu_forward(const SwiGluForwardParams<T>& p, Launcher&& launch) {
  using elementwise::launch_kernel;
  RLXF_REQUIRE(p.n >= 0 && (p.n == 0 || (p.gate && p.up && p.y)), "swiglu_forward: null array or negative n = ", p.n);
  if (p.n == 0) return;
  if (elementwise::all_aligned16(p.gate, p.up, p.y)) launch_kernel<SwiGluForward<T, vec128<T>>>(p, launch);
  else launch_kernel<SwiGluForward<T, 1>>(p, launch);
}

// dgate (+)= dy up silu'(gate), dup (+)= dy silu(gate).
template <class T, class Launcher>
void swiglu_backward(const SwiGluBackwardParams<T>& p, Launcher&& launch) {
  using elementwise::launch_kernel;
  RLXF_REQUIRE(p.n >= 0 && (p.n == 0 || (p.gate && p.up && p.dy && p.dgate && p.dup)),
               "swiglu_backward: null array or negative n = ", p.n);
  if (p.n == 0) return;
  if (elementwise::all_aligned16(p.gate, p.up, p.dy, p.dgate, p.dup)) launch_kernel<SwiGluBackward<T, vec128<T>>>(p, launch);
  else launch_kernel<SwiGluBackward<T, 1>>(p, launch);
}

// Backward = false: out = tanh(x); true: out (+)= dy (1 - x^2) with x the forward's output.
template <bool Backward, class T, class Launcher>
void tanh_activation(const TanhParams<T>& p, Launcher&& launch) {
  using elementwise::launch_kernel;
  RLXF_REQUIRE(p.n >= 0 && (p.n == 0 || (p.x && p.out && (p.dy || !Backward))),
               Backward ? "tanh_backward" : "tanh_forward", ": null array or negative n = ", p.n);
  if (p.n == 0) return;
  if (elementwise::all_aligned16(p.x, p.out) && (!Backward || elementwise::all_aligned16(p.dy)))
    launch_kernel<Tanh<T, vec128<T>, Backward>>(p, launch);
  else
    launch_kernel<Tanh<T, 1, Backward>>(p, launch);
}

}  // namespace rlxf::cuda
