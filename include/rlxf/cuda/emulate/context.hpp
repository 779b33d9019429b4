#pragma once
// Context: the execution context a kernel sees when the emulator runs it, one per GPU
// thread. It has the same members as cuda::DeviceContext (device_context.hpp), so a kernel
// written as `template <class Ctx> static void run(Ctx& ctx, const Params& p)` compiles
// against either; here every member is checked (see BlockRunner).
#include <cstring>
#include <source_location>
#include <type_traits>

#include "rlxf/cuda/emulate/block.hpp"
#include "rlxf/cuda/emulate/fragment.hpp"
#include "rlxf/cuda/emulate/shared_memory.hpp"
#include "rlxf/cuda/numeric.hpp"

namespace rlxf::cuda::emulate {

class Context {
 public:
  using here = std::source_location;
  template <class Use, int M, int N, int K, class T, class Layout = void>
  using fragment = Fragment<Use, M, N, K, T, Layout>;

  Context(BlockRunner& block, int rank) : block_(block), rank_(rank) {
    const Dim3 d = block.config().block;
    thread_ = Dim3{rank % d.x, rank / d.x % d.y, rank / (d.x * d.y)};
  }

  // ---- indices ----
  Dim3 thread_idx() const { return thread_; }
  Dim3 block_idx() const { return block_.block_idx(); }
  Dim3 block_dim() const { return block_.config().block; }
  Dim3 grid_dim() const { return block_.config().grid; }
  int thread_rank() const { return rank_; }  // x fastest, then y, then z
  int lane() const { return rank_ % warp_size; }
  int warp() const { return rank_ / warp_size; }

  // ---- synchronisation ----
  void sync(here where = here::current()) { block_.barrier(where); }  // __syncthreads
  void syncwarp(here where = here::current()) { block_.warp_rendezvous(where, true); }

  // ---- shared memory: `count` elements of T at `byte_offset` of the dynamic shared memory ----
  template <class T>
  SharedArray<T> shared(long byte_offset, long count, const char* name = "shared") const {
    const long end = byte_offset + count * static_cast<long>(sizeof(T));
    if (byte_offset < 0 || count < 0 || end > block_.config().shared_bytes)
      raise(Fault::shared_out_of_bounds, "shared array ", name, ": bytes [", byte_offset, ", ",
            end, ") exceed the launch's ", block_.config().shared_bytes,
            " bytes of dynamic shared memory");
    if (byte_offset % static_cast<long>(alignof(T)) != 0)
      raise(Fault::misaligned, "shared array ", name, " of ", sizeof(T), "-byte elements starts at byte ",
            byte_offset);
    return SharedArray<T>(block_, static_cast<std::size_t>(byte_offset), count, name);
  }

  // ---- global memory: vector accesses (the pointer must be aligned to the vector) ----
  template <class T, int N>
  void load(Vec<T, N>& v, const T* p) const {
    check_aligned(p, sizeof(v), "vector load");
    std::memcpy(static_cast<void*>(&v), p, sizeof(v));
  }
  template <class T, int N>
  void store(T* p, const Vec<T, N>& v) const {
    check_aligned(p, sizeof(v), "vector store");
    std::memcpy(static_cast<void*>(p), &v, sizeof(v));
  }
  // atomicAdd on global memory (threads run one at a time here, so a plain add is atomic).
  float atomic_add(float* p, float v) const {
    const float old = *p;
    *p = old + v;
    return old;
  }

  // ---- warp operations (all 32 lanes, full mask) ----
  template <class T>
  T shfl(T v, int src_lane, here where = here::current()) { return exchange(v, [&](int) { return src_lane & 31; }, where); }
  template <class T>
  T shfl_xor(T v, int lane_mask, here where = here::current()) {
    return exchange(v, [&](int l) { return (l ^ lane_mask) & 31; }, where);
  }
  template <class T>
  T shfl_down(T v, int delta, here where = here::current()) {
    return exchange(v, [&](int l) { return l + delta < warp_size ? l + delta : l; }, where);
  }
  std::uint32_t ballot(bool pred, here where = here::current()) {
    auto& w = block_.warp();
    const std::uint64_t gen = w.generation;
    w.lanes[gen % 2][lane()] = pred ? 1 : 0;
    block_.warp_rendezvous(where, false);
    std::uint32_t mask = 0;
    for (int l = 0; l < warp_size; ++l)
      if (w.lanes[gen % 2][l]) mask |= 1u << l;
    return mask;
  }
  bool any(bool pred, here where = here::current()) { return ballot(pred, where) != 0; }
  bool all(bool pred, here where = here::current()) { return ballot(pred, where) == full_warp_mask; }

  // ---- WMMA (m16n16k16; warp-wide) ----
  template <class F>
  void fill_fragment(F& f, typename F::element_type v) const {
    for (auto& x : f.x) x = v;
  }

  // Operand tile from memory: A (16 x 16, M x K) or B (K x N) in the fragment's layout,
  // `ldm` elements between rows (row_major) or columns (col_major).
  template <class F, class P>
  void load_matrix_sync(F& f, P p, long ldm, here where = here::current()) {
    static_assert(F::is_operand, "accumulators load with a memory layout argument");
    constexpr bool row = std::is_same_v<typename F::layout, wmma::row_major>;
    transfer_tile<typename F::element_type>(p, ldm, where, kind_of<F>(), F::num_elements,
                                            [&](int i, long r, long c, auto& element) {
                                              element.get(f.x[i], row ? r * ldm + c : c * ldm + r);
                                            });
  }
  template <class F, class P>
  void load_matrix_sync(F& f, P p, long ldm, wmma::Layout layout, here where = here::current()) {
    static_assert(!F::is_operand, "operand fragments take their layout from their type");
    transfer_tile<float>(p, ldm, where, FragmentKind::accumulator, F::num_elements,
                         [&](int i, long r, long c, auto& element) {
                           element.get(f.x[i], layout == wmma::Layout::row_major ? r * ldm + c : c * ldm + r);
                         });
  }
  template <class P, class F>
  void store_matrix_sync(P p, const F& f, long ldm, wmma::Layout layout, here where = here::current()) {
    static_assert(!F::is_operand, "only accumulators are stored");
    transfer_tile<float>(p, ldm, where, FragmentKind::accumulator, F::num_elements,
                         [&](int i, long r, long c, auto& element) {
                           element.put(f.x[i], layout == wmma::Layout::row_major ? r * ldm + c : c * ldm + r);
                         });
  }

  // d = a b + c over the warp's fragments, products exact and sums in f32 (k ascending).
  template <class D, class A, class B, class C>
  void mma_sync(D& d, const A& a, const B& b, const C& c, here where = here::current()) {
    static_assert(std::is_same_v<typename A::use, wmma::matrix_a> &&
                      std::is_same_v<typename B::use, wmma::matrix_b> &&
                      std::is_same_v<typename C::use, wmma::accumulator> &&
                      std::is_same_v<typename D::use, wmma::accumulator>,
                  "mma_sync(d, a, b, c): d and c accumulators, a matrix_a, b matrix_b");
    static_assert(std::is_same_v<typename A::element_type, typename B::element_type>,
                  "a and b hold the same element type");
    auto& w = block_.warp();
    const std::uint64_t gen = w.generation;
    float(&tiles)[3][256] = w.tiles[gen % 2];
    deposit(tiles[0], a, kind_of<A>());
    deposit(tiles[1], b, kind_of<B>());
    deposit(tiles[2], c, FragmentKind::accumulator);
    block_.warp_rendezvous(where, false);
    const FragmentMap& out = block_.map(FragmentKind::accumulator);
    for (int i = 0; i < D::num_elements; ++i) {
      const int rc = out(lane(), i, D::num_elements), r = rc / 16, col = rc % 16;
      float sum = tiles[2][rc];
      for (int k = 0; k < 16; ++k) sum += tiles[0][r * 16 + k] * tiles[1][k * 16 + col];
      d.x[i] = sum;
    }
  }

 private:
  void check_aligned(const void* p, std::size_t bytes, const char* what) const {
    if (reinterpret_cast<std::uintptr_t>(p) % bytes != 0)
      raise(Fault::misaligned, "misaligned ", what, ": thread ", block_.thread_text(rank_), " moves ",
            bytes, " bytes at address ", p, ", not a multiple of ", bytes);
  }

  template <class T, class SrcLane>
  T exchange(T v, SrcLane src_of, here where) {
    static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move 4 or 8 bytes");
    auto& w = block_.warp();
    const std::uint64_t gen = w.generation;
    std::memcpy(&w.lanes[gen % 2][lane()], &v, sizeof(T));
    block_.warp_rendezvous(where, false);
    T out;
    std::memcpy(&out, &w.lanes[gen % 2][src_of(lane())], sizeof(T));
    return out;
  }

  template <class F>
  void deposit(float (&tile)[256], const F& f, FragmentKind kind) const {
    const FragmentMap& m = block_.map(kind);
    for (int i = 0; i < F::num_elements; ++i) tile[m(lane(), i, F::num_elements)] = to_float(f.x[i]);
  }

  // Element access of a WMMA tile in global memory (a raw pointer) ...
  template <class T>
  struct GlobalTile {
    T* base;
    template <class U> void get(U& out, long offset) const { out = static_cast<U>(base[offset]); }
    template <class U> void put(const U& in, long offset) const { base[offset] = static_cast<T>(in); }
  };
  // ... or in shared memory (a SharedPtr, every element checked).
  template <class T>
  struct SharedTile {
    SharedPtr<T> at;
    template <class U> void get(U& out, long offset) const { out = static_cast<U>(T((*at.array)[at.index + offset])); }
    template <class U> void put(const U& in, long offset) const { (*at.array)[at.index + offset] = static_cast<T>(in); }
  };

  template <class T, class P>
  void check_tile(P p, long ldm, const char* what) const {
    const long unit = 16 / static_cast<long>(sizeof(T));
    if (ldm % unit != 0)
      raise(Fault::misaligned, what, ": ldm ", ldm, " is not a multiple of ", unit,
            " (16 bytes of ", sizeof(T), "-byte elements)");
    std::uintptr_t address;
    if constexpr (std::is_pointer_v<P>) address = reinterpret_cast<std::uintptr_t>(p);
    else address = p.array->byte_of(p.index);
    if (address % 32 != 0)
      raise(Fault::misaligned, what, ": the tile's address is not 256-bit (32-byte) aligned");
  }

  // A WMMA load or store: a warp rendezvous, then each lane moves its own elements.
  template <class T, class P, class Move>
  void transfer_tile(P p, long ldm, here where, FragmentKind kind, int num_elements, Move move) {
    check_tile<T>(p, ldm, "WMMA load/store");
    block_.warp_rendezvous(where, false);
    const FragmentMap& m = block_.map(kind);
    auto tile = [&] {
      if constexpr (std::is_pointer_v<P>) return GlobalTile<std::remove_pointer_t<P>>{p};
      else return SharedTile<typename P::element_type>{p};
    }();
    for (int i = 0; i < num_elements; ++i) {
      const int rc = m(lane(), i, num_elements);
      move(i, rc / 16, rc % 16, tile);
    }
  }

  BlockRunner& block_;
  int rank_;
  Dim3 thread_;
};

}  // namespace rlxf::cuda::emulate
