#pragma once
// Rotary position embedding on the GPU, the convention of cpu/rope.hpp (Hugging Face
// LLaMA's "rotate_half"): within each head of D channels, channel i < D/2 pairs with
// i + D/2 and the pair turns by the angle p theta^(-2i/D) at position p:
//   y[i]       = x[i] cos - x[i + D/2] sin
//   y[i + D/2] = x[i + D/2] cos + x[i] sin
// The backward is the inverse rotation (sin negated). Cosines and sines come from tables
// built on the host in double and rounded once to f32, exactly as the CPU rounds them, so
// large positions lose nothing to f32 angles (rope_tables). Storage T is f32 or bf16, math
// f32. Out of place or in place (y == x); token strides let q and k be rotated inside a
// fused (N, 3, H, D) projection. A position outside the table gives NaN (the CPU has no
// table to overrun; the GPU must not read past it).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/cuda/elementwise/common.hpp"
#include "rlxf/cuda/math.hpp"

namespace rlxf::cuda {

// cos and sin of p theta^(-2i/D) for p < max_positions, i < D/2, each (max_positions, D/2)
// row-major: computed as cpu::rope_forward computes them (double, rounded to f32 once).
struct RopeTables {
  std::vector<float> cos, sin;
  int max_positions = 0, half = 0;
};

inline RopeTables rope_tables(int D, int max_positions, double theta = 10000.0) {
  RLXF_REQUIRE(D > 0 && D % 2 == 0, "rope_tables: the head dimension D = ", D, " must be even and positive");
  RLXF_REQUIRE(max_positions >= 0, "rope_tables: max_positions = ", max_positions, " is negative");
  RopeTables t;
  t.max_positions = max_positions;
  t.half = D / 2;
  const auto size = static_cast<std::size_t>(max_positions) * static_cast<std::size_t>(t.half);
  t.cos.resize(size);
  t.sin.resize(size);
  std::vector<double> inv_freq(static_cast<std::size_t>(t.half));
  for (int i = 0; i < t.half; ++i)
    inv_freq[static_cast<std::size_t>(i)] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(D));
  for (int p = 0; p < max_positions; ++p)
    for (int i = 0; i < t.half; ++i) {
      const double angle = static_cast<double>(p) * inv_freq[static_cast<std::size_t>(i)];
      const std::size_t at = static_cast<std::size_t>(p) * static_cast<std::size_t>(t.half) + static_cast<std::size_t>(i);
      t.cos[at] = static_cast<float>(std::cos(angle));
      t.sin[at] = static_cast<float>(std::sin(angle));
    }
  return t;
}

template <class T>
struct RopeParams {
  const T* x = nullptr;                     // (N, H, D), token stride x_stride
  T* y = nullptr;                           // (N, H, D), token stride y_stride; may be x
  const std::int32_t* positions = nullptr;  // (N)
  const float* cos = nullptr;               // (max_positions, D/2), from rope_tables
  const float* sin = nullptr;               // (max_positions, D/2)
  int N = 0, H = 0, D = 0, max_positions = 0;
  long long x_stride = 0, y_stride = 0;     // elements between tokens; 0 means H * D
  bool inverse = false;                     // the backward: rotate by minus the angle
};

// One thread per V consecutive pairs (i .. i + V - 1 with i + D/2 ...) of one head of one
// token, grid-stride. V: 128-bit vectors or scalars.
template <class T, int V>
struct Rope {
  static_assert(ElementwiseStorage<T>);
  using Params = RopeParams<T>;
  static constexpr int max_threads = 256;
  static constexpr int min_blocks = 4;  // <= 64 registers: 4 blocks an SM (as activations.hpp)

  static LaunchConfig launch_config(const Params& p) {
    const long long items = static_cast<long long>(p.N) * p.H * (p.D / 2 / V);
    return {{elementwise::grid_stride_blocks(items, max_threads), 1, 1}, {max_threads, 1, 1}, 0};
  }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    const int half = p.D / 2, per_head = half / V;
    const long long x_stride = p.x_stride ? p.x_stride : static_cast<long long>(p.H) * p.D;
    const long long y_stride = p.y_stride ? p.y_stride : static_cast<long long>(p.H) * p.D;
    const long long items = static_cast<long long>(p.N) * p.H * per_head;
    const long long step = static_cast<long long>(ctx.block_dim().x) * ctx.grid_dim().x;
    for (long long item = static_cast<long long>(ctx.block_idx().x) * ctx.block_dim().x + ctx.thread_rank();
         item < items; item += step) {
      const int i = static_cast<int>(item % per_head) * V;
      const long long head = item / per_head;
      const int h = static_cast<int>(head % p.H);
      const long long n = head / p.H;
      const T* x = p.x + n * x_stride + static_cast<long long>(h) * p.D + i;
      T* y = p.y + n * y_stride + static_cast<long long>(h) * p.D + i;
      const std::int32_t pos = p.positions[n];
      float x1[V], x2[V], c[V], s[V], y1[V], y2[V];
      load<V>(ctx, x, x1);
      load<V>(ctx, x + half, x2);
      if (pos >= 0 && pos < p.max_positions) {
        load<V>(ctx, p.cos + static_cast<long long>(pos) * half + i, c);
        load<V>(ctx, p.sin + static_cast<long long>(pos) * half + i, s);
      } else {
        RLXF_UNROLL
        for (int k = 0; k < V; ++k) c[k] = s[k] = math::quiet_nan();
      }
      RLXF_UNROLL
      for (int k = 0; k < V; ++k) {
        const float sk = p.inverse ? -s[k] : s[k];
        y1[k] = x1[k] * c[k] - x2[k] * sk;
        y2[k] = x2[k] * c[k] + x1[k] * sk;
      }
      store<V>(ctx, y, y1);
      store<V>(ctx, y + half, y2);
    }
  }
};

// Rotates p.x into p.y (forward, or its inverse with p.inverse for the backward: then x is
// the gradient with respect to the rotated output and y receives the input's). 128-bit
// accesses when D/2, the strides and every pointer allow, scalars otherwise.
template <class T, class Launcher>
void rope(const RopeParams<T>& p, Launcher&& launch) {
  RLXF_REQUIRE(p.D > 0 && p.D % 2 == 0, "rope: the head dimension D = ", p.D, " must be even and positive");
  RLXF_REQUIRE(p.N >= 0 && p.H >= 1, "rope: need N >= 0 tokens and H >= 1 heads, got N = ", p.N, ", H = ", p.H);
  RLXF_REQUIRE(p.N == 0 || (p.x && p.y && p.positions && p.cos && p.sin),
               "rope: x, y, positions and the tables must not be null");
  const long long x_stride = p.x_stride ? p.x_stride : static_cast<long long>(p.H) * p.D;
  const long long y_stride = p.y_stride ? p.y_stride : static_cast<long long>(p.H) * p.D;
  RLXF_REQUIRE(x_stride >= static_cast<long long>(p.H) * p.D && y_stride >= static_cast<long long>(p.H) * p.D,
               "rope: token strides ", x_stride, " and ", y_stride, " must be at least H * D = ", p.H * p.D);
  if (p.N == 0) return;
  constexpr int V = vec128<T>;
  const bool vec = p.D / 2 % V == 0 && x_stride % V == 0 && y_stride % V == 0 &&
                   elementwise::all_aligned16(p.x, p.y, p.cos, p.sin);
  if (vec) elementwise::launch_kernel<Rope<T, V>>(p, launch);
  else elementwise::launch_kernel<Rope<T, 1>>(p, launch);
}

}  // namespace rlxf::cuda
