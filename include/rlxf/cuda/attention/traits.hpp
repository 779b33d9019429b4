#pragma once
// Tile configurations of the fused attention kernels (FlashAttention's Kernel_traits style):
// each derives its warp split, fragment counts, shared-memory layout and occupancy from
// (element type, head dim, Br query rows, Bc keys, warps), with static_asserts for what the
// kernels assume. configs.hpp names the shipped ones.
#include <cstdint>
#include <type_traits>

#include "rlxf/core/dtype.hpp"
#include "rlxf/cuda/platform.hpp"

namespace rlxf::cuda::attention {

namespace traits_detail {
// Every shared region starts on a 128-byte boundary (WMMA tiles need 32, vectors 16).
constexpr int align128(long bytes) { return static_cast<int>((bytes + 127) / 128 * 128); }
// sm_80 (A100): 164 KB of shared memory per SM, 1 KB of it reserved per resident block,
// at most 163 KB of dynamic shared memory per block, 2048 threads per SM.
inline constexpr int sm80_smem_per_sm = 164 * 1024;
inline constexpr int smem_reserved_per_block = 1024;
inline constexpr int sm80_max_block_smem = 163 * 1024;
inline constexpr int max_threads_per_sm = 2048;
// Resident blocks per SM that shared memory and threads allow (the kernels' min_blocks for
// __launch_bounds__, which caps registers at 65536 / (threads * min_blocks)).
constexpr int blocks_per_sm(int smem_bytes, int threads) {
  const int by_smem = sm80_smem_per_sm / (smem_bytes + smem_reserved_per_block);
  const int by_threads = max_threads_per_sm / threads;
  const int n = by_smem < by_threads ? by_smem : by_threads;
  return n < 1 ? 1 : n;
}
}  // namespace traits_detail

// Forward: one CTA per (Br query rows, q head, batch); each warp owns Br / warps query rows
// (whole 16-row WMMA strips) for the CTA's life, so the softmax of a row needs only
// __syncwarp, never a block barrier.
// Shared memory: Q (Br x d), K, V (Bc x d) in T with rows padded by 16 bytes; S (Br x Bc, f32,
// rows padded by 16 bytes) with P (T) written over the first half of each S row; a 16 x 16
// f32 scratch tile per warp (row-broadcast factors for the O accumulators, and the staging
// of O on its way to global memory); the key bias (0 or -inf) of the current key tile.
template <class T_, int HeadDim, int BlockM, int BlockN, int Warps>
struct ForwardTraits {
  using T = T_;
  static constexpr int d = HeadDim;
  static constexpr int br = BlockM;  // query rows per CTA
  static constexpr int bc = BlockN;  // keys per tile
  static constexpr int warps = Warps;
  static constexpr int threads = warps * warp_size;

  static constexpr int warp_rows = br / warps;   // query rows a warp owns
  static constexpr int m_frags = warp_rows / 16;  // 16-row strips a warp owns
  static constexpr int s_frags = bc / 16;         // S accumulators per strip
  static constexpr int d_frags = d / 16;          // O accumulators per strip, k-steps of Q K^T
  static constexpr int p_steps = bc / 16;         // k-steps of P V
  // Softmax: two lanes per row of a strip, each taking every other column.
  static constexpr int lanes_per_row = warp_size / 16;
  static constexpr int cols_per_lane = bc / lanes_per_row;

  static constexpr int ld_qkv = d + 8;    // T elements between rows of sQ, sK, sV
  static constexpr int ld_s = bc + 4;     // f32 elements between rows of sS
  static constexpr int ld_p = 2 * ld_s;   // T elements between rows of sP (aliasing sS)
  static constexpr int vec = 8;           // T elements per 128-bit global access

  static constexpr int q_offset = 0;
  static constexpr int k_offset = q_offset + traits_detail::align128(long(br) * ld_qkv * sizeof(T));
  static constexpr int v_offset = k_offset + traits_detail::align128(long(bc) * ld_qkv * sizeof(T));
  static constexpr int s_offset = v_offset + traits_detail::align128(long(bc) * ld_qkv * sizeof(T));
  static constexpr int scratch_offset = s_offset + traits_detail::align128(long(br) * ld_s * 4);
  static constexpr int bias_offset = scratch_offset + traits_detail::align128(long(warps) * 256 * 4);
  static constexpr int smem_bytes = bias_offset + traits_detail::align128(long(bc) * 4);
  static constexpr int min_blocks = traits_detail::blocks_per_sm(smem_bytes, threads);

  static_assert(std::is_same_v<T, f16> || std::is_same_v<T, bf16>, "WMMA operands are f16 or bf16");
  static_assert(d % 16 == 0 && d % vec == 0, "head_dim is a whole number of 16-wide k-steps");
  static_assert(bc % 16 == 0 && bc >= 16, "Bc is a whole number of 16-key fragments");
  static_assert(br % (16 * warps) == 0, "each warp owns whole 16-row strips");
  static_assert(m_frags >= 1, "at least one strip per warp");
  static_assert(bc % lanes_per_row == 0, "the two lanes of a row split its keys evenly");
  static_assert(ld_qkv % 8 == 0 && ld_p % 8 == 0 && ld_s % 4 == 0,
                "WMMA ldm: a multiple of 8 (16-bit types) or 4 (f32) elements");
  static_assert((16 * ld_qkv * sizeof(T)) % 32 == 0 && (16 * ld_s * 4) % 32 == 0,
                "every 16-row strip starts 32-byte aligned (WMMA tile pointers)");
  static_assert(bc * sizeof(T) <= ld_s * 4, "a row of P fits over its row of S");
  static_assert(threads % warp_size == 0 && threads <= 1024, "whole warps, at most 1024 threads");
  static_assert(smem_bytes <= traits_detail::sm80_max_block_smem, "fits sm_80's 163 KB per block");
};

// Backward: one CTA per (Bc keys, kv head, batch), looping over the q heads of the kv head's
// group and over their query tiles (Br rows), so a CTA owns its dK, dV rows and sums them
// over the group in a fixed order. Per query tile, three phases split by block barriers:
//   A: S = Q K^T and dP = dO V^T, 16 x 16 tiles dealt round-robin to the warps -> sS, sdP (f32)
//   B: P = exp2(S scale log2e - L log2e), dS = P (dP - D), elementwise -> sP, sdS (T)
//   C: dV += P^T dO, dK += dS^T Q (accumulators in registers, each warp owning fixed 16 x 16
//      tiles of the Bc x d blocks), dQ = dS K (tiles round-robin, staged through the warp's
//      scratch tile into the f32 dq accumulator in global memory).
// Shared memory: K, V (Bc x d), Q, dO (Br x d) in T; S, dP (Br x Bc) f32; P, dS (Br x Bc) T;
// a 16 x 16 f32 scratch tile per warp; L log2e, D (Br) and the key bias (Bc) in f32.
template <class T_, int HeadDim, int BlockM, int BlockN, int Warps>
struct BackwardTraits {
  using T = T_;
  static constexpr int d = HeadDim;
  static constexpr int br = BlockM;  // query rows per tile
  static constexpr int bc = BlockN;  // keys per CTA
  static constexpr int warps = Warps;
  static constexpr int threads = warps * warp_size;

  static constexpr int d_frags = d / 16;
  static constexpr int s_tiles = (br / 16) * (bc / 16);        // 16 x 16 tiles of S (and of dP)
  static constexpr int a_tiles_per_warp = 2 * s_tiles / warps;  // phase A: S and dP tiles
  static constexpr int kv_tiles_per_warp = (bc / 16) * d_frags / warps;  // dK and dV accumulators
  static constexpr int dq_tiles_per_warp = (br / 16) * d_frags / warps;  // phase C: dQ tiles
  static constexpr int elems_per_thread = br * bc / threads;    // phase B

  static constexpr int ld_qkv = d + 8;  // T elements
  static constexpr int ld_s = bc + 4;   // f32 elements
  static constexpr int ld_p = bc + 8;   // T elements
  static constexpr int vec = 8;

  static constexpr int k_offset = 0;
  static constexpr int v_offset = k_offset + traits_detail::align128(long(bc) * ld_qkv * sizeof(T));
  static constexpr int q_offset = v_offset + traits_detail::align128(long(bc) * ld_qkv * sizeof(T));
  static constexpr int do_offset = q_offset + traits_detail::align128(long(br) * ld_qkv * sizeof(T));
  static constexpr int s_offset = do_offset + traits_detail::align128(long(br) * ld_qkv * sizeof(T));
  static constexpr int dp_offset = s_offset + traits_detail::align128(long(br) * ld_s * 4);
  static constexpr int p_offset = dp_offset + traits_detail::align128(long(br) * ld_s * 4);
  static constexpr int ds_offset = p_offset + traits_detail::align128(long(br) * ld_p * sizeof(T));
  static constexpr int scratch_offset = ds_offset + traits_detail::align128(long(br) * ld_p * sizeof(T));
  static constexpr int lse_offset = scratch_offset + traits_detail::align128(long(warps) * 256 * 4);
  static constexpr int delta_offset = lse_offset + traits_detail::align128(long(br) * 4);
  static constexpr int bias_offset = delta_offset + traits_detail::align128(long(br) * 4);
  static constexpr int smem_bytes = bias_offset + traits_detail::align128(long(bc) * 4);
  static constexpr int min_blocks = traits_detail::blocks_per_sm(smem_bytes, threads);

  // Row kernels (preprocess, dq conversion): a warp per row, d / 32 elements per lane.
  static constexpr int row_warps = 4;
  static constexpr int row_threads = row_warps * warp_size;
  static constexpr int per_lane = d / warp_size;

  static_assert(std::is_same_v<T, f16> || std::is_same_v<T, bf16>, "WMMA operands are f16 or bf16");
  static_assert(d % 16 == 0 && d % vec == 0, "head_dim is a whole number of 16-wide k-steps");
  static_assert(br % 16 == 0 && bc % 16 == 0, "tiles are whole 16 x 16 fragments");
  static_assert((2 * s_tiles) % warps == 0, "phase A deals its tiles evenly to the warps");
  static_assert(((bc / 16) * d_frags) % warps == 0 && kv_tiles_per_warp >= 1,
                "every warp owns the same number of dK / dV tiles");
  static_assert(((br / 16) * d_frags) % warps == 0, "phase C deals the dQ tiles evenly");
  static_assert((br * bc) % threads == 0, "phase B gives every thread the same number of elements");
  static_assert(br <= threads && bc <= threads, "one thread per row / key fills the per-row arrays");
  static_assert(ld_qkv % 8 == 0 && ld_p % 8 == 0 && ld_s % 4 == 0, "WMMA ldm rules");
  static_assert((16 * ld_qkv * sizeof(T)) % 32 == 0 && (16 * ld_s * 4) % 32 == 0 &&
                    (16 * ld_p * sizeof(T)) % 32 == 0,
                "every 16-row strip starts 32-byte aligned (WMMA tile pointers)");
  static_assert(per_lane >= 1 && d % warp_size == 0 && per_lane * sizeof(T) <= 16,
                "row kernels: d / 32 elements per lane, one vector access");
  static_assert(threads % warp_size == 0 && threads <= 1024, "whole warps, at most 1024 threads");
  static_assert(smem_bytes <= traits_detail::sm80_max_block_smem, "fits sm_80's 163 KB per block");
};

}  // namespace rlxf::cuda::attention
