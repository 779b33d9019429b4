#pragma once
// TileLoader: moves a (Rows x Cols) tile of a row-major global matrix into shared memory
// through registers, so a kernel can fetch tile k+1 while it computes on tile k (register
// double buffering). Each thread moves whole 128-bit vectors when the matrix allows it
// (row stride and base address multiples of the vector, the vector inside the matrix) and
// single elements otherwise; elements outside the matrix (ragged edges) become zeros.
// The shared tile is stored as is, (Rows x ld_s), or transposed, (Cols x ld_s).
#include "rlxf/cuda/numeric.hpp"
#include "rlxf/cuda/platform.hpp"

namespace rlxf::cuda {

template <class T, int Rows, int Cols, int Threads>
struct TileLoader {
  static constexpr int vec = Cols % vec128<T> == 0 ? vec128<T> : 1;  // elements per access
  static constexpr int vecs_per_row = Cols / vec;
  static constexpr int per_thread = Rows * vecs_per_row / Threads;
  static_assert(Rows * vecs_per_row % Threads == 0 && per_thread > 0,
                "the tile must split into whole vectors per thread");

  Vec<T, vec> regs[per_thread];

  // Whether every in-bounds vector of a matrix at `base` with row stride `ld` is aligned.
  RLXF_DEVICE static bool vectorisable(const T* base, long ld) {
    return ld % vec == 0 && reinterpret_cast<unsigned long long>(base) % sizeof(Vec<T, vec>) == 0;
  }

  // Loads the tile whose top-left element is (row0, col0) of a (rows x cols) matrix.
  template <class Ctx>
  RLXF_DEVICE void load(Ctx& ctx, const T* base, long ld, int row0, int col0, int rows, int cols,
                        bool vector_ok) {
RLXF_UNROLL
    for (int i = 0; i < per_thread; ++i) {
      const int index = ctx.thread_rank() + i * Threads;
      const int r = row0 + index / vecs_per_row, c = col0 + index % vecs_per_row * vec;
      const T* src = base + static_cast<long>(r) * ld + c;
      if (vector_ok && r < rows && c + vec <= cols) {
        ctx.load(regs[i], src);
      } else {
RLXF_UNROLL
        for (int e = 0; e < vec; ++e) regs[i][e] = (r < rows && c + e < cols) ? src[e] : T{};
      }
    }
  }

  // Stores the registers into shared tile `s` from element `offset`, row stride ld_s.
  template <bool Transpose, class Ctx, class Shared>
  RLXF_DEVICE void store(Ctx& ctx, const Shared& s, long offset, int ld_s) const {
RLXF_UNROLL
    for (int i = 0; i < per_thread; ++i) {
      const int index = ctx.thread_rank() + i * Threads;
      const int r = index / vecs_per_row, c = index % vecs_per_row * vec;
      if constexpr (Transpose) {
RLXF_UNROLL
        for (int e = 0; e < vec; ++e) s[offset + static_cast<long>(c + e) * ld_s + r] = regs[i][e];
      } else {
        s.store(offset + static_cast<long>(r) * ld_s + c, regs[i]);
      }
    }
  }
};

}  // namespace rlxf::cuda
