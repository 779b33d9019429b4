#pragma once
// dispatch_gemm: picks the compiled GEMM kernel for a call (input type, the runtime
// transposition flags made compile-time, tile size from the shape and the GPU's SM count)
// and hands it to a launcher, so the same choice runs on the GPU (cuda::launch) and under
// the emulator (emulate::launch) through a launcher (see KernelTag in platform.hpp).
#include <type_traits>

#include "rlxf/cuda/gemm/configs.hpp"
#include "rlxf/cuda/gemm/params.hpp"

namespace rlxf::cuda {

namespace gemm_detail {
template <template <bool, bool> class Kernel, class Launcher, class P>
void launch_transposed(Launcher& launcher, bool trans_a, bool trans_b, const P& p) {
  auto go = [&]<class K>() { launcher(KernelTag<K>{}, K::launch_config(p), p); };
  if (!trans_a && !trans_b) go.template operator()<Kernel<false, false>>();
  else if (!trans_a) go.template operator()<Kernel<false, true>>();
  else if (!trans_b) go.template operator()<Kernel<true, false>>();
  else go.template operator()<Kernel<true, true>>();
}
}  // namespace gemm_detail

// C = epilogue(alpha op(A) op(B) + beta C) (params.hpp); sm_count picks the tile size.
template <class Launcher, class T, class TOut>
void dispatch_gemm(Launcher&& launcher, bool trans_a, bool trans_b, const GemmParams<T, TOut>& p, int sm_count) {
  check_gemm(p, trans_a, trans_b);
  if (p.m == 0 || p.n == 0) return;
  using namespace gemm_detail;
  const bool large = gemm_tiles::use_large_tiles(p.m, p.n, p.batch, sm_count);
  if constexpr (std::is_same_v<T, float>) {
    static_assert(std::is_same_v<TOut, float>, "f32 GEMM writes f32");
    if (large) launch_transposed<SimtFamily<gemm_tiles::SimtLarge>::template kernel>(launcher, trans_a, trans_b, p);
    else launch_transposed<SimtFamily<gemm_tiles::SimtSmall>::template kernel>(launcher, trans_a, trans_b, p);
  } else {
    if (large) launch_transposed<WmmaFamily<gemm_tiles::WmmaLarge, T, TOut>::template kernel>(launcher, trans_a, trans_b, p);
    else launch_transposed<WmmaFamily<gemm_tiles::WmmaSmall, T, TOut>::template kernel>(launcher, trans_a, trans_b, p);
  }
}

}  // namespace rlxf::cuda
