#pragma once
// The attention backward kernels (see attention.hpp for the design, traits.hpp for the
// tiles), launched in this order:
//   PreprocessKernel: D = rowsum(dO * O) (f32), and zeroes the f32 dq accumulator;
//   BackwardKernel:   one CTA per (Bc keys, kv head, batch), looping over the group's q
//                     heads and their query tiles: P recomputed from L, dV, dK in registers,
//                     dQ added into the accumulator (f32 atomics, or the CTA's own slice);
//   ConvertDqKernel:  dq = scale * (sum of the accumulator's slices), rounded to T.
#include <cstdint>

#include "rlxf/cuda/attention/params.hpp"
#include "rlxf/cuda/attention/tile_io.hpp"
#include "rlxf/cuda/math.hpp"
#include "rlxf/cuda/numeric.hpp"
#include "rlxf/cuda/platform.hpp"
#include "rlxf/cuda/wmma_tags.hpp"

namespace rlxf::cuda::attention {

// Slices of the dq accumulator: one per key tile when deterministic, else one.
template <class Traits>
RLXF_HOST_DEVICE int dq_splits(const Dims& dm, bool deterministic) {
  return deterministic ? ceil_div(dm.kv_len, Traits::bc) : 1;
}

// A warp per row of (batch, q_heads, q_len): delta = rowsum(dout * o), accumulator rows = 0.
template <class Traits>
struct PreprocessKernel {
  using T = typename Traits::T;
  using Params = BackwardParams<T>;
  static constexpr int max_threads = Traits::row_threads;
  static constexpr int min_blocks = 1;

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    constexpr int n = Traits::per_lane, d = Traits::d;
    const Dims& dm = p.dims;
    const std::int64_t rows = static_cast<std::int64_t>(dm.batch) * dm.q_heads * dm.q_len;
    const std::int64_t row = static_cast<std::int64_t>(ctx.block_idx().x) * Traits::row_warps + ctx.warp();
    if (row >= rows) return;  // whole warps leave together
    const std::int64_t at = row * d + ctx.lane() * n;
    Vec<T, n> o, dout;
    ctx.load(o, p.o + at);
    ctx.load(dout, p.dout + at);
    float sum = 0.0f;
    RLXF_ATTENTION_UNROLL
    for (int e = 0; e < n; ++e) sum += to_float(o[e]) * to_float(dout[e]);
    RLXF_ATTENTION_UNROLL
    for (int m = warp_size / 2; m > 0; m /= 2) sum += ctx.shfl_xor(sum, m);
    if (ctx.lane() == 0) p.delta[row] = sum;
    const int splits = dq_splits<Traits>(dm, p.deterministic);
    const Vec<float, n> zero{};
    for (int s = 0; s < splits; ++s) ctx.store(p.dq_accum + s * rows * d + at, zero);
  }
};

template <class Traits>
struct BackwardKernel {
  using T = typename Traits::T;
  using Params = BackwardParams<T>;
  static constexpr int max_threads = Traits::threads;
  static constexpr int min_blocks = Traits::min_blocks;
  static constexpr int shared_bytes = Traits::smem_bytes;  // dynamic, per block

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    using Tr = Traits;
    using FragA = typename Ctx::template fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major>;
    using FragAt = typename Ctx::template fragment<wmma::matrix_a, 16, 16, 16, T, wmma::col_major>;
    using FragB = typename Ctx::template fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major>;
    using FragBt = typename Ctx::template fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major>;
    using Acc = typename Ctx::template fragment<wmma::accumulator, 16, 16, 16, float>;
    constexpr float inf = math::infinity();
    constexpr int ld = Tr::ld_qkv, d = Tr::d;

    const Dims& dm = p.dims;
    const int n_block = ctx.block_idx().x, hk = ctx.block_idx().y, b = ctx.block_idx().z;
    const int group = dm.q_heads / dm.kv_heads;
    const int j0 = n_block * Tr::bc;
    const int off = dm.kv_len - dm.q_len;  // causal: query i sees key j iff j <= i + off
    const int warp = ctx.warp(), tid = ctx.thread_rank();

    auto sK = ctx.template shared<T>(Tr::k_offset, Tr::bc * ld, "sK");
    auto sV = ctx.template shared<T>(Tr::v_offset, Tr::bc * ld, "sV");
    auto sQ = ctx.template shared<T>(Tr::q_offset, Tr::br * ld, "sQ");
    auto sdO = ctx.template shared<T>(Tr::do_offset, Tr::br * ld, "sdO");
    auto sS = ctx.template shared<float>(Tr::s_offset, Tr::br * Tr::ld_s, "sS");
    auto sdP = ctx.template shared<float>(Tr::dp_offset, Tr::br * Tr::ld_s, "sdP");
    auto sP = ctx.template shared<T>(Tr::p_offset, Tr::br * Tr::ld_p, "sP");
    auto sdS = ctx.template shared<T>(Tr::ds_offset, Tr::br * Tr::ld_p, "sdS");
    auto sScratch = ctx.template shared<float>(Tr::scratch_offset + warp * 256 * 4, 256, "sScratch");
    auto sL = ctx.template shared<float>(Tr::lse_offset, Tr::br, "sL");  // L log2(e)
    auto sD = ctx.template shared<float>(Tr::delta_offset, Tr::br, "sD");
    auto sBias = ctx.template shared<float>(Tr::bias_offset, Tr::bc, "sBias");

    const std::int64_t kv_row0 = (static_cast<std::int64_t>(b) * dm.kv_heads + hk) * dm.kv_stride;
    load_rows<Tr::bc, d, ld, Tr::threads>(ctx, sK, p.k + (kv_row0 + j0) * d, dm.kv_len - j0);
    load_rows<Tr::bc, d, ld, Tr::threads>(ctx, sV, p.v + (kv_row0 + j0) * d, dm.kv_len - j0);
    load_key_bias<Tr::bc, Tr::threads>(ctx, sBias, dm, b, j0);

    // This warp's dK, dV tiles: t = warp + warps u, (key strip t / d_frags, column strip t % d_frags).
    Acc dk_acc[Tr::kv_tiles_per_warp], dv_acc[Tr::kv_tiles_per_warp];
    RLXF_ATTENTION_UNROLL
    for (int u = 0; u < Tr::kv_tiles_per_warp; ++u) {
      ctx.fill_fragment(dk_acc[u], 0.0f);
      ctx.fill_fragment(dv_acc[u], 0.0f);
    }

    // Query tiles that see any of the CTA's keys: under the causal mask, from the one holding
    // query j0 - off (the first to see key j0) on.
    const int first_query = dm.causal ? j0 - off : 0;
    const int m_begin = first_query > 0 ? first_query / Tr::br : 0;
    const int m_end = ceil_div(dm.q_len, Tr::br);
    const std::int64_t rows = static_cast<std::int64_t>(dm.batch) * dm.q_heads * dm.q_len;
    float* dq_accum = p.dq_accum + (p.deterministic ? n_block * rows * d : 0);

    for (int hq = 0; hq < group; ++hq) {
      const int h = hk * group + hq;
      const std::int64_t q_row0 = (static_cast<std::int64_t>(b) * dm.q_heads + h) * dm.q_len;
      for (int m = m_begin; m < m_end; ++m) {
        const int i0 = m * Tr::br;
        load_rows<Tr::br, d, ld, Tr::threads>(ctx, sQ, p.q + (q_row0 + i0) * d, dm.q_len - i0);
        load_rows<Tr::br, d, ld, Tr::threads>(ctx, sdO, p.dout + (q_row0 + i0) * d, dm.q_len - i0);
        for (int r = tid; r < Tr::br; r += Tr::threads) {
          const bool valid = i0 + r < dm.q_len;  // rows past q_len: P = 0 (L = +inf), D = 0
          sL[r] = valid ? p.lse[q_row0 + i0 + r] * log2e : inf;
          sD[r] = valid ? p.delta[q_row0 + i0 + r] : 0.0f;
        }
        ctx.sync();

        // Phase A: S = Q K^T and dP = dO V^T.
        RLXF_ATTENTION_ROLLED
        for (int u = 0; u < Tr::a_tiles_per_warp; ++u) {
          const int t = warp + Tr::warps * u;
          const bool is_s = t < Tr::s_tiles;
          const int tt = is_s ? t : t - Tr::s_tiles;
          const int mt = tt / (Tr::bc / 16), nt = tt % (Tr::bc / 16);
          const auto& left = is_s ? sQ : sdO;
          const auto& right = is_s ? sK : sV;
          Acc acc;
          ctx.fill_fragment(acc, 0.0f);
          RLXF_ATTENTION_ROLLED
          for (int kk = 0; kk < Tr::d_frags; ++kk) {
            FragA a;
            FragBt bt;
            ctx.load_matrix_sync(a, left.ptr(mt * 16 * ld + kk * 16), ld);
            ctx.load_matrix_sync(bt, right.ptr(nt * 16 * ld + kk * 16), ld);
            ctx.mma_sync(acc, a, bt, acc);
          }
          const auto& out = is_s ? sS : sdP;
          ctx.store_matrix_sync(out.ptr(mt * 16 * Tr::ld_s + nt * 16), acc, Tr::ld_s, wmma::Layout::row_major);
        }
        ctx.sync();

        // Phase B: P = exp2(S scale log2e - L log2e) (0 where hidden), dS = P (dP - D).
        const bool diagonal = dm.causal && j0 + Tr::bc - 1 > i0 + off;
        RLXF_ATTENTION_UNROLL
        for (int u = 0; u < Tr::elems_per_thread; ++u) {
          const int e = tid + Tr::threads * u;
          const int r = e / Tr::bc, c = e % Tr::bc;
          float x = float(sS[r * Tr::ld_s + c]) * dm.scale_log2 - float(sL[r]) + float(sBias[c]);
          if (diagonal && j0 + c > i0 + r + off) x = -inf;
          const float prob = math::exp2(x);
          const float ds = prob * (float(sdP[r * Tr::ld_s + c]) - float(sD[r]));
          sP[r * Tr::ld_p + c] = from_float<T>(prob);
          sdS[r * Tr::ld_p + c] = from_float<T>(ds);
        }
        ctx.sync();

        // Phase C: dV += P^T dO, dK += dS^T Q on the warp's own tiles.
        RLXF_ATTENTION_UNROLL
        for (int u = 0; u < Tr::kv_tiles_per_warp; ++u) {
          const int t = warp + Tr::warps * u;
          const int kt = t / Tr::d_frags, nt = t % Tr::d_frags;
          RLXF_ATTENTION_ROLLED
          for (int ks = 0; ks < Tr::br / 16; ++ks) {
            FragAt pt;  // P^T: element (key, query) is P[query][key]
            FragB dob;
            ctx.load_matrix_sync(pt, sP.ptr(ks * 16 * Tr::ld_p + kt * 16), Tr::ld_p);
            ctx.load_matrix_sync(dob, sdO.ptr(ks * 16 * ld + nt * 16), ld);
            ctx.mma_sync(dv_acc[u], pt, dob, dv_acc[u]);
            FragAt dst;
            FragB qb;
            ctx.load_matrix_sync(dst, sdS.ptr(ks * 16 * Tr::ld_p + kt * 16), Tr::ld_p);
            ctx.load_matrix_sync(qb, sQ.ptr(ks * 16 * ld + nt * 16), ld);
            ctx.mma_sync(dk_acc[u], dst, qb, dk_acc[u]);
          }
        }
        // dQ (unscaled) += dS K, tile by tile through the warp's scratch tile.
        RLXF_ATTENTION_ROLLED
        for (int u = 0; u < Tr::dq_tiles_per_warp; ++u) {
          const int t = warp + Tr::warps * u;
          const int mt = t / Tr::d_frags, nt = t % Tr::d_frags;
          Acc acc;
          ctx.fill_fragment(acc, 0.0f);
          RLXF_ATTENTION_ROLLED
          for (int ks = 0; ks < Tr::bc / 16; ++ks) {
            FragA dsa;
            FragB kb;
            ctx.load_matrix_sync(dsa, sdS.ptr(mt * 16 * Tr::ld_p + ks * 16), Tr::ld_p);
            ctx.load_matrix_sync(kb, sK.ptr(ks * 16 * ld + nt * 16), ld);
            ctx.mma_sync(acc, dsa, kb, acc);
          }
          ctx.syncwarp();  // the scratch tile's previous contents have been read
          ctx.store_matrix_sync(sScratch.ptr(0), acc, 16, wmma::Layout::row_major);
          ctx.syncwarp();
          const int r = ctx.lane() >> 1, half = ctx.lane() & 1;
          const int i = i0 + mt * 16 + r;
          if (i < dm.q_len) {
            float* dst = dq_accum + (q_row0 + i) * d + nt * 16 + half * 8;
            RLXF_ATTENTION_UNROLL
            for (int e = 0; e < 8; ++e) {
              const float v = sScratch[r * 16 + half * 8 + e];
              if (p.deterministic) dst[e] = v;  // this CTA's slice: written once
              else ctx.atomic_add(dst + e, v);
            }
          }
        }
        ctx.sync();  // every shared tile of this query tile is free
      }
    }

    // dK = scale dS^T Q, dV out (rows past kv_len skipped).
    RLXF_ATTENTION_UNROLL
    for (int u = 0; u < Tr::kv_tiles_per_warp; ++u) {
      const int t = warp + Tr::warps * u;
      const int kt = t / Tr::d_frags, nt = t % Tr::d_frags;
      ctx.syncwarp();
      ctx.store_matrix_sync(sScratch.ptr(0), dk_acc[u], 16, wmma::Layout::row_major);
      ctx.syncwarp();
      store_scratch_rows<d>(ctx, sScratch, p.dk + kv_row0 * d, j0 + kt * 16, nt * 16, dm.kv_len, dm.scale);
      ctx.syncwarp();
      ctx.store_matrix_sync(sScratch.ptr(0), dv_acc[u], 16, wmma::Layout::row_major);
      ctx.syncwarp();
      store_scratch_rows<d>(ctx, sScratch, p.dv + kv_row0 * d, j0 + kt * 16, nt * 16, dm.kv_len, 1.0f);
    }
  }
};

// A warp per row of (batch, q_heads, q_len): dq = scale * (sum over the slices).
template <class Traits>
struct ConvertDqKernel {
  using T = typename Traits::T;
  using Params = BackwardParams<T>;
  static constexpr int max_threads = Traits::row_threads;
  static constexpr int min_blocks = 1;

  template <class Ctx>
  RLXF_DEVICE static void run(Ctx& ctx, const Params& p) {
    constexpr int n = Traits::per_lane, d = Traits::d;
    const Dims& dm = p.dims;
    const std::int64_t rows = static_cast<std::int64_t>(dm.batch) * dm.q_heads * dm.q_len;
    const std::int64_t row = static_cast<std::int64_t>(ctx.block_idx().x) * Traits::row_warps + ctx.warp();
    if (row >= rows) return;
    const std::int64_t at = row * d + ctx.lane() * n;
    float sum[n] = {};
    const int splits = dq_splits<Traits>(dm, p.deterministic);
    for (int s = 0; s < splits; ++s) {  // a fixed order
      Vec<float, n> part;
      ctx.load(part, p.dq_accum + s * rows * d + at);
      RLXF_ATTENTION_UNROLL
      for (int e = 0; e < n; ++e) sum[e] += part[e];
    }
    Vec<T, n> out;
    RLXF_ATTENTION_UNROLL
    for (int e = 0; e < n; ++e) out[e] = from_float<T>(dm.scale * sum[e]);
    ctx.store(p.dq + at, out);
  }
};

}  // namespace rlxf::cuda::attention
