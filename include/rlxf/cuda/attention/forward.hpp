#pragma once
// The attention forward kernel (see attention.hpp for the design and traits.hpp for the
// tiles). One CTA per (Br query rows, q head, batch); warp w owns query rows
// [w Br/warps, (w+1) Br/warps) of the tile. For each key tile j (Bc keys):
//   S = Q K^T (WMMA, f32)                                    -> sS (the warp's rows)
//   per row (two lanes a row, in registers):
//     x = S scale log2e + bias (-inf for hidden keys; causal mask on diagonal tiles only)
//     m' = max(m, rowmax x);  P = exp2(x - m');  alpha = exp2(m - m');  l = alpha l + rowsum P
//     P -> sP (T, over the row's S), alpha -> the warp's scratch tile, broadcast along rows
//   O = diag(alpha) O (elementwise with the alpha tile loaded as an accumulator fragment:
//     two accumulators of one type share their element layout, whatever it is) + P V (WMMA)
// At the end O /= l the same way, O goes out through the scratch tile, and
// L = (m + log2 l) ln2 (+inf where l = 0: no visible key, O = 0).
#include <cstdint>

#include "rlxf/cuda/attention/params.hpp"
#include "rlxf/cuda/attention/tile_io.hpp"
#include "rlxf/cuda/math.hpp"
#include "rlxf/cuda/numeric.hpp"
#include "rlxf/cuda/platform.hpp"
#include "rlxf/cuda/wmma_tags.hpp"

namespace rlxf::cuda::attention {

template <class Traits>
struct ForwardKernel {
  using T = typename Traits::T;
  using Params = ForwardParams<T>;
  static constexpr int max_threads = Traits::threads;
  static constexpr int min_blocks = Traits::min_blocks;
  static constexpr int shared_bytes = Traits::smem_bytes;  // dynamic, per block

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using Tr = Traits;
    using FragA = typename Ctx::template fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major>;
    using FragB = typename Ctx::template fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major>;
    using FragBt = typename Ctx::template fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major>;
    using Acc = typename Ctx::template fragment<wmma::accumulator, 16, 16, 16, float>;
    constexpr float inf = math::infinity();
    constexpr int ld = Tr::ld_qkv;

    const Dims& dm = p.dims;
    const int m_block = ctx.block_idx().x, h = ctx.block_idx().y, b = ctx.block_idx().z;
    const int hk = h / (dm.q_heads / dm.kv_heads);
    const int i0 = m_block * Tr::br;
    const int off = dm.kv_len - dm.q_len;  // causal: query i sees key j iff j <= i + off
    const int warp = ctx.warp(), lane = ctx.lane();
    const int row_in_strip = lane >> 1, half = lane & 1;  // softmax: two lanes a row
    const int warp_row0 = warp * Tr::warp_rows;

    auto sQ = ctx.template shared<T>(Tr::q_offset, Tr::br * ld, "sQ");
    auto sK = ctx.template shared<T>(Tr::k_offset, Tr::bc * ld, "sK");
    auto sV = ctx.template shared<T>(Tr::v_offset, Tr::bc * ld, "sV");
    auto sS = ctx.template shared<float>(Tr::s_offset, Tr::br * Tr::ld_s, "sS");
    auto sP = ctx.template shared<T>(Tr::s_offset, Tr::br * Tr::ld_p, "sP");  // over sS
    auto sScratch = ctx.template shared<float>(Tr::scratch_offset + warp * 256 * 4, 256, "sScratch");
    auto sBias = ctx.template shared<float>(Tr::bias_offset, Tr::bc, "sBias");

    const std::int64_t q_row0 = (static_cast<std::int64_t>(b) * dm.q_heads + h) * dm.q_len;
    const std::int64_t kv_row0 = (static_cast<std::int64_t>(b) * dm.kv_heads + hk) * dm.kv_stride;
    load_rows<Tr::br, Tr::d, ld, Tr::threads>(ctx, sQ, p.q + (q_row0 + i0) * Tr::d, dm.q_len - i0);

    // Key tiles to visit: all of them, or under the causal mask those up to the one holding
    // the last key the tile's last query row sees (later tiles are hidden to every row).
    int n_tiles = ceil_div(dm.kv_len, Tr::bc);
    if (dm.causal) {
      const int last_row = (i0 + Tr::br < dm.q_len ? i0 + Tr::br : dm.q_len) - 1;
      const int key_end = last_row + 1 + off;  // keys [0, key_end) visible to it
      const int causal_tiles = key_end > 0 ? ceil_div(key_end, Tr::bc) : 0;
      n_tiles = causal_tiles < n_tiles ? causal_tiles : n_tiles;
    }

    Acc o_acc[Tr::m_frags][Tr::d_frags];
    float m_run[Tr::m_frags], l_run[Tr::m_frags];  // running max (log2 units) and this lane's partial sum
    RLXF_ATTENTION_UNROLL
    for (int mi = 0; mi < Tr::m_frags; ++mi) {
      m_run[mi] = -inf;
      l_run[mi] = 0.0f;
      RLXF_ATTENTION_UNROLL
      for (int nd = 0; nd < Tr::d_frags; ++nd) ctx.fill_fragment(o_acc[mi][nd], 0.0f);
    }

    for (int j = 0; j < n_tiles; ++j) {
      const int j0 = j * Tr::bc;
      load_rows<Tr::bc, Tr::d, ld, Tr::threads>(ctx, sK, p.k + (kv_row0 + j0) * Tr::d, dm.kv_len - j0);
      load_rows<Tr::bc, Tr::d, ld, Tr::threads>(ctx, sV, p.v + (kv_row0 + j0) * Tr::d, dm.kv_len - j0);
      load_key_bias<Tr::bc, Tr::threads>(ctx, sBias, dm, b, j0);
      ctx.sync();

      // S = Q K^T for the warp's strips: each Q fragment feeds the strip's Bc / 16 products.
      RLXF_ATTENTION_UNROLL
      for (int mi = 0; mi < Tr::m_frags; ++mi) {
        const int row0 = warp_row0 + mi * 16;
        Acc s_acc[Tr::s_frags];
        RLXF_ATTENTION_UNROLL
        for (int ni = 0; ni < Tr::s_frags; ++ni) ctx.fill_fragment(s_acc[ni], 0.0f);
        RLXF_ATTENTION_ROLLED
        for (int kk = 0; kk < Tr::d_frags; ++kk) {
          FragA a;
          ctx.load_matrix_sync(a, sQ.ptr(row0 * ld + kk * 16), ld);
          RLXF_ATTENTION_UNROLL
          for (int ni = 0; ni < Tr::s_frags; ++ni) {
            FragBt kt;  // K^T: element (k, n) is K[n][k]
            ctx.load_matrix_sync(kt, sK.ptr(ni * 16 * ld + kk * 16), ld);
            ctx.mma_sync(s_acc[ni], a, kt, s_acc[ni]);
          }
        }
        RLXF_ATTENTION_UNROLL
        for (int ni = 0; ni < Tr::s_frags; ++ni)
          ctx.store_matrix_sync(sS.ptr(row0 * Tr::ld_s + ni * 16), s_acc[ni], Tr::ld_s, wmma::Layout::row_major);
      }
      ctx.syncwarp();

      // Only tiles crossing the diagonal need the causal mask element by element: some key
      // of the tile lies past the first row's last visible key.
      const bool diagonal = dm.causal && j0 + Tr::bc - 1 > i0 + off;
      RLXF_ATTENTION_UNROLL
      for (int mi = 0; mi < Tr::m_frags; ++mi) {
        const int row0 = warp_row0 + mi * 16;
        const int r = row0 + row_in_strip, i = i0 + r;
        float x[Tr::cols_per_lane];
        float row_max = -inf;
        RLXF_ATTENTION_UNROLL
        for (int k = 0; k < Tr::cols_per_lane; ++k) {
          const int c = half + Tr::lanes_per_row * k;
          float s = float(sS[r * Tr::ld_s + c]) * dm.scale_log2 + float(sBias[c]);
          if (diagonal && j0 + c > i + off) s = -inf;
          x[k] = s;
          row_max = math::max(row_max, s);
        }
        row_max = math::max(row_max, ctx.shfl_xor(row_max, 1));
        const float m_new = math::max(m_run[mi], row_max);
        // Nothing visible yet: shift by 0 so exp2(-inf - shift) = 0, not NaN.
        const float shift = m_new == -inf ? 0.0f : m_new;
        const float alpha = math::exp2(m_run[mi] - shift);
        float sum = 0.0f;
        RLXF_ATTENTION_UNROLL
        for (int k = 0; k < Tr::cols_per_lane; ++k) {
          x[k] = math::exp2(x[k] - shift);
          sum += x[k];
        }
        l_run[mi] = alpha * l_run[mi] + sum;
        m_run[mi] = m_new;
        ctx.syncwarp();  // the strip's S is read before P overwrites it
        RLXF_ATTENTION_UNROLL
        for (int k = 0; k < Tr::cols_per_lane; ++k)
          sP[r * Tr::ld_p + half + Tr::lanes_per_row * k] = from_float<T>(x[k]);
        RLXF_ATTENTION_UNROLL
        for (int e = 0; e < 8; ++e) sScratch[row_in_strip * 16 + half * 8 + e] = alpha;
        ctx.syncwarp();

        // O = diag(alpha) O + P V.
        Acc alpha_frag;
        ctx.load_matrix_sync(alpha_frag, sScratch.ptr(0), 16, wmma::Layout::row_major);
        RLXF_ATTENTION_UNROLL
        for (int nd = 0; nd < Tr::d_frags; ++nd) {
          RLXF_ATTENTION_UNROLL
          for (int e = 0; e < Acc::num_elements; ++e) o_acc[mi][nd].x[e] *= alpha_frag.x[e];
        }
        RLXF_ATTENTION_ROLLED
        for (int kk = 0; kk < Tr::p_steps; ++kk) {
          FragA pa;
          ctx.load_matrix_sync(pa, sP.ptr(row0 * Tr::ld_p + kk * 16), Tr::ld_p);
          RLXF_ATTENTION_UNROLL
          for (int nd = 0; nd < Tr::d_frags; ++nd) {
            FragB vb;
            ctx.load_matrix_sync(vb, sV.ptr(kk * 16 * ld + nd * 16), ld);
            ctx.mma_sync(o_acc[mi][nd], pa, vb, o_acc[mi][nd]);
          }
        }
      }
      ctx.sync();  // sK, sV, sBias, sS and the scratch tiles are free for the next tile
    }

    // O /= l; O and L out.
    RLXF_ATTENTION_UNROLL
    for (int mi = 0; mi < Tr::m_frags; ++mi) {
      const int row0 = warp_row0 + mi * 16;
      const int i = i0 + row0 + row_in_strip;
      const float l = l_run[mi] + ctx.shfl_xor(l_run[mi], 1);
      const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;
      ctx.syncwarp();  // earlier reads of the scratch tile (previous strip) are done
      RLXF_ATTENTION_UNROLL
      for (int e = 0; e < 8; ++e) sScratch[row_in_strip * 16 + half * 8 + e] = inv_l;
      ctx.syncwarp();
      Acc inv_frag;
      ctx.load_matrix_sync(inv_frag, sScratch.ptr(0), 16, wmma::Layout::row_major);
      RLXF_ATTENTION_UNROLL
      for (int nd = 0; nd < Tr::d_frags; ++nd) {
        RLXF_ATTENTION_UNROLL
        for (int e = 0; e < Acc::num_elements; ++e) o_acc[mi][nd].x[e] *= inv_frag.x[e];
        ctx.syncwarp();  // the scratch tile's previous contents have been read
        ctx.store_matrix_sync(sScratch.ptr(0), o_acc[mi][nd], 16, wmma::Layout::row_major);
        ctx.syncwarp();
        store_scratch_rows<Tr::d>(ctx, sScratch, p.o + q_row0 * Tr::d, i0 + row0, nd * 16, dm.q_len, 1.0f);
      }
      if (half == 0 && i < dm.q_len) p.lse[q_row0 + i] = l > 0.0f ? m_run[mi] * ln2 + math::log(l) : inf;
    }
  }
};

}  // namespace rlxf::cuda::attention
