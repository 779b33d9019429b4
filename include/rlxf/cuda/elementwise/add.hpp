#pragma once
// y += x elementwise on the GPU: how a kernel that WRITES its result (attention backward's
// dq, dk, dv; the norms' f32 parameter-gradient sums) honours the Backend concept's "every
// backward adds into its gradients" (cuda/backend.hpp), and how bf16 gradients are added into
// f32 ones. x and y are f32 or bf16, independently; the sum is formed in f32 and rounded once
// to y's type. Grid-stride loop over chunks of V elements moved as 128-bit accesses when both
// arrays are 16-byte aligned (the last n % V elements scalar), scalars otherwise.
#include "rlxf/core/error.hpp"
#include "rlxf/cuda/elementwise/activations.hpp"  // elementwise_config, the elementwise launch shape
#include "rlxf/cuda/elementwise/common.hpp"

namespace rlxf::cuda {

template <class TX, class TY>
struct AddParams {
  const TX* x = nullptr;  // (n)
  TY* y = nullptr;        // (n): += x
  long long n = 0;
};

// Elements per chunk of the vectorised Add: a 128-bit access of the narrower type (8 when
// either is bf16: one 16-byte bf16 access, two f32 ones), so both arrays move whole vectors.
template <class TX, class TY>
inline constexpr int add_vec = vec128<TX> > vec128<TY> ? vec128<TX> : vec128<TY>;

// y[i] = round_TY(y[i] + x[i]). V: add_vec<TX, TY> or 1.
template <class TX, class TY, int V>
struct Add {
  static_assert(ElementwiseStorage<TX> && ElementwiseStorage<TY>);
  static_assert(V == 1 || V == add_vec<TX, TY>, "chunks are scalars or 128-bit vectors of the narrower type");
  using Params = AddParams<TX, TY>;
  static constexpr int max_threads = elementwise::elementwise_threads;
  static constexpr int min_blocks = elementwise::elementwise_min_blocks;
  static LaunchConfig launch_config(const Params& p) { return elementwise::elementwise_config<V>(p.n); }

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using namespace elementwise;
    for_each_element<V>(ctx, p.n, [&](auto width, long long i) {
      constexpr int W = decltype(width)::value;
      float x[W], y[W];
      load<W>(ctx, p.x + i, x);
      load<W>(ctx, p.y + i, y);
      RLXF_UNROLL
      for (int k = 0; k < W; ++k) y[k] += x[k];
      store<W>(ctx, p.y + i, y);
    });
  }
};

// y += x. x and y must not overlap unless they are the same array (y = 2 y). Throws
// rlxf::Error for bad arguments, before any launch.
template <class TX, class TY, class Launcher>
void add(const AddParams<TX, TY>& p, Launcher&& launch) {
  using elementwise::launch_kernel;
  RLXF_REQUIRE(p.n >= 0 && (p.n == 0 || (p.x && p.y)), "add: null array or negative n = ", p.n);
  if (p.n == 0) return;
  if (elementwise::all_aligned16(p.x, p.y)) launch_kernel<Add<TX, TY, add_vec<TX, TY>>>(p, launch);
  else launch_kernel<Add<TX, TY, 1>>(p, launch);
}

}  // namespace rlxf::cuda
