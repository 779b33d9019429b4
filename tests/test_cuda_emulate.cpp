// The CUDA emulator itself: kernels run as on a GPU (barriers, shared memory, shuffles,
// ballots, WMMA), and the bugs it exists to catch are caught: a planted out-of-bounds
// shared-memory write, a missing barrier, a barrier only some threads reach, a warp
// operation only some lanes reach, a read of uninitialised shared memory, a misaligned WMMA
// tile, and code that assumes a WMMA fragment layout.
#include <doctest/doctest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "rlxf/core/dtype.hpp"
#include "rlxf/cuda/emulate/launch.hpp"

using namespace rlxf;
using namespace rlxf::cuda;
using emulate::Fault;
using emulate::KernelFault;

namespace {

// What a kernel under test does wrong (or nothing).
enum class Bug { none, no_barrier, write_past_end, barrier_in_branch, barriers_at_two_places, half_warp_shuffle, read_unwritten, no_syncwarp };

// out[block, t] = in[block, (t + 1) mod n] + in[block, (t + 2) mod n], exchanged through
// shared memory: each thread writes its element, then (after a barrier) reads two others.
struct Neighbours {
  struct Params {
    const float* in;
    float* out;
    Bug bug;
  };
  static constexpr int max_threads = 256, min_blocks = 1;
  template <class Ctx>
  static void run(Ctx& ctx, const Params& p) {
    const int n = ctx.block_dim().x, t = ctx.thread_rank(), base = ctx.block_idx().x * n;
    auto s = ctx.template shared<float>(0, n, "s");
    s[p.bug == Bug::write_past_end && t == n - 1 ? n : t] = p.in[base + t];
    if (p.bug == Bug::barrier_in_branch) {  // the upper half leaves early
      if (t >= n / 2) return;
      ctx.sync();
    } else if (p.bug == Bug::barriers_at_two_places) {
      if (t < n / 2) ctx.sync();
      else ctx.sync();
    } else if (p.bug != Bug::no_barrier) {
      ctx.sync();
    }
    const float a = s[(t + 1) % n], b = s[(t + 2) % n];
    p.out[base + t] = a + b;
  }
};

// A barrier-separated second round, so a missing barrier shows as a race (both values
// written) rather than an uninitialised read.
struct TwoRounds {
  struct Params {
    float* out;
    Bug bug;
  };
  static constexpr int max_threads = 128, min_blocks = 1;
  template <class Ctx>
  static void run(Ctx& ctx, const Params& p) {
    const int n = ctx.block_dim().x, t = ctx.thread_rank();
    auto s = ctx.template shared<float>(0, n, "s");
    s[t] = float(t);
    ctx.sync();
    const float first = s[(t + 1) % n];
    ctx.sync();
    s[t] = float(10 * t);
    if (p.bug != Bug::no_barrier) ctx.sync();
    const float second = s[(t + n - 1) % n];
    p.out[t] = first + second;
  }
};

// Warp-level: a butterfly sum with shfl_xor, a ballot, and a shared-memory exchange between
// lanes of one warp ordered by __syncwarp.
struct WarpOps {
  struct Params {
    const int* in;
    int* sums;
    std::uint32_t* ballots;
    int* exchanged;
    Bug bug;
  };
  static constexpr int max_threads = 128, min_blocks = 1;
  template <class Ctx>
  static void run(Ctx& ctx, const Params& p) {
    const int t = ctx.thread_rank();
    int v = p.in[t];
    if (p.bug == Bug::half_warp_shuffle && ctx.lane() >= 16) {
      p.sums[t] = v;
      return;
    }
    for (int m = 16; m > 0; m /= 2) v += ctx.shfl_xor(v, m);
    p.sums[t] = v;
    // Every lane writes its shared element, then a ballot: a rendezvous, but not a memory
    // fence, so reading another lane's element still needs __syncwarp.
    auto s = ctx.template shared<int>(0, 2 * ctx.block_dim().x, "s");
    s[t] = p.in[t] * 3;
    p.ballots[t] = ctx.ballot(p.in[t] % 2 == 1);
    if (p.bug == Bug::read_unwritten) {
      p.exchanged[t] = s[ctx.block_dim().x + t];  // the upper half is never written
      return;
    }
    if (p.bug != Bug::no_syncwarp) ctx.syncwarp();
    p.exchanged[t] = s[ctx.warp() * 32 + (ctx.lane() + 5) % 32];
  }
};

// One warp computes D = A B + 1 for 16 x 16 f16 tiles. With `assume_layout`, it then
// post-processes the accumulator as if lane l held row (8 l + i) / 16 (a natural-layout
// assumption): it zeroes what it takes to be row 0 in registers. Correct code stores the
// fragment first (see the layout-independent branch).
struct TileProduct {
  struct Params {
    const f16* a;
    const f16* b;
    float* d;
    bool assume_layout;
    long ldm;
    long b_offset;
  };
  static constexpr int max_threads = 32, min_blocks = 1;
  template <class Ctx>
  static void run(Ctx& ctx, const Params& p) {
    typename Ctx::template fragment<wmma::matrix_a, 16, 16, 16, f16, wmma::row_major> fa;
    typename Ctx::template fragment<wmma::matrix_b, 16, 16, 16, f16, wmma::col_major> fb;
    typename Ctx::template fragment<wmma::accumulator, 16, 16, 16, float> acc;
    auto sb = ctx.template shared<f16>(0, 256 + 64, "sb");
    for (int i = ctx.lane(); i < 256; i += 32) sb[i + p.b_offset] = p.b[i];
    ctx.syncwarp();
    ctx.fill_fragment(acc, 1.0f);
    ctx.load_matrix_sync(fa, p.a, p.ldm);
    ctx.load_matrix_sync(fb, sb.ptr(p.b_offset), 16);
    ctx.mma_sync(acc, fa, fb, acc);
    if (p.assume_layout) {
      for (int i = 0; i < acc.num_elements; ++i)
        if ((ctx.lane() * acc.num_elements + i) / 16 == 0) acc.x[i] = 0.0f;
      ctx.store_matrix_sync(p.d, acc, 16, wmma::Layout::row_major);
    } else {
      ctx.store_matrix_sync(p.d, acc, 16, wmma::Layout::row_major);
      ctx.syncwarp();                                 // every lane's elements are in memory
      if (ctx.lane() < 16) p.d[ctx.lane()] = 0.0f;  // row 0, through memory
    }
  }
};

std::vector<float> iota_floats(std::size_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 0.0f);
  return v;
}

Fault fault_of(auto&& run) {
  try {
    run();
  } catch (const KernelFault& e) {
    MESSAGE(std::string(e.what()));
    return e.kind();
  }
  FAIL("the emulator reported nothing");
  return Fault::bad_launch;
}

}  // namespace

TEST_CASE("a correct kernel runs as on a GPU, in any block order") {
  const int n = 96, blocks = 3;
  const auto in = iota_floats(std::size_t(n * blocks));
  for (const bool shuffle : {false, true}) {
    std::vector<float> out(in.size(), -1.0f);
    emulate::launch<Neighbours>({{blocks, 1, 1}, {n, 1, 1}, n * 4}, {in.data(), out.data(), Bug::none},
                                {.seed = 7, .shuffle_blocks = shuffle});
    for (int b = 0; b < blocks; ++b)
      for (int t = 0; t < n; ++t)
        CHECK(out[std::size_t(b * n + t)] == in[std::size_t(b * n + (t + 1) % n)] + in[std::size_t(b * n + (t + 2) % n)]);
  }
  std::vector<float> out(128);
  emulate::launch<TwoRounds>({{1, 1, 1}, {128, 1, 1}, 512}, {out.data(), Bug::none});
  for (int t = 0; t < 128; ++t) CHECK(out[std::size_t(t)] == float((t + 1) % 128 + 10 * ((t + 127) % 128)));
}

TEST_CASE("a planted out-of-bounds shared-memory write is caught") {
  const auto in = iota_floats(64);
  std::vector<float> out(64);
  CHECK(fault_of([&] {
          emulate::launch<Neighbours>({{1, 1, 1}, {64, 1, 1}, 64 * 4}, {in.data(), out.data(), Bug::write_past_end});
        }) == Fault::shared_out_of_bounds);
  // An array carved past the launch's dynamic shared memory is refused when carved.
  CHECK(fault_of([&] {
          emulate::launch<Neighbours>({{1, 1, 1}, {64, 1, 1}, 63 * 4}, {in.data(), out.data(), Bug::none});
        }) == Fault::shared_out_of_bounds);
}

TEST_CASE("a missing barrier is caught as a race") {
  std::vector<float> out(128);
  CHECK(fault_of([&] { emulate::launch<TwoRounds>({{1, 1, 1}, {128, 1, 1}, 512}, {out.data(), Bug::no_barrier}); }) ==
        Fault::shared_race);
  // In the one-round kernel the first thread reads a neighbour's element before it exists.
  const auto in = iota_floats(64);
  CHECK(fault_of([&] {
          emulate::launch<Neighbours>({{1, 1, 1}, {64, 1, 1}, 256}, {in.data(), out.data(), Bug::no_barrier});
        }) == Fault::uninitialised_read);
}

TEST_CASE("a barrier only half the block reaches is caught as divergence") {
  const auto in = iota_floats(64);
  std::vector<float> out(64);
  CHECK(fault_of([&] {
          emulate::launch<Neighbours>({{1, 1, 1}, {64, 1, 1}, 256}, {in.data(), out.data(), Bug::barrier_in_branch});
        }) == Fault::barrier_divergence);
  CHECK(fault_of([&] {
          emulate::launch<Neighbours>({{1, 1, 1}, {64, 1, 1}, 256}, {in.data(), out.data(), Bug::barriers_at_two_places});
        }) == Fault::barrier_divergence);
}

TEST_CASE("warp shuffles, ballots and __syncwarp-ordered exchanges give the GPU's results") {
  const int n = 64;
  std::vector<int> in(n), sums(n), exchanged(n);
  std::vector<std::uint32_t> ballots(n);
  for (int t = 0; t < n; ++t) in[std::size_t(t)] = (t * 37) % 11;
  emulate::launch<WarpOps>({{1, 1, 1}, {n, 1, 1}, n * 8},
                           {in.data(), sums.data(), ballots.data(), exchanged.data(), Bug::none});
  for (int w = 0; w < 2; ++w) {
    int sum = 0;
    std::uint32_t odd = 0;
    for (int l = 0; l < 32; ++l) {
      sum += in[std::size_t(32 * w + l)];
      if (in[std::size_t(32 * w + l)] % 2) odd |= 1u << l;
    }
    for (int l = 0; l < 32; ++l) {
      const auto t = std::size_t(32 * w + l);
      CHECK(sums[t] == sum);
      CHECK(ballots[t] == odd);
      CHECK(exchanged[t] == 3 * in[std::size_t(32 * w + (l + 5) % 32)]);
    }
  }
  SUBCASE("a shuffle half the warp skips is caught") {
    CHECK(fault_of([&] {
            emulate::launch<WarpOps>({{1, 1, 1}, {n, 1, 1}, n * 8},
                                     {in.data(), sums.data(), ballots.data(), exchanged.data(), Bug::half_warp_shuffle});
          }) == Fault::warp_divergence);
  }
  SUBCASE("an exchange between lanes without __syncwarp is caught") {
    CHECK(fault_of([&] {
            emulate::launch<WarpOps>({{1, 1, 1}, {n, 1, 1}, n * 8},
                                     {in.data(), sums.data(), ballots.data(), exchanged.data(), Bug::no_syncwarp});
          }) == Fault::shared_race);
  }
  SUBCASE("reading shared memory no thread wrote is caught") {
    CHECK(fault_of([&] {
            emulate::launch<WarpOps>({{1, 1, 1}, {n, 1, 1}, n * 8},
                                     {in.data(), sums.data(), ballots.data(), exchanged.data(), Bug::read_unwritten});
          }) == Fault::uninitialised_read);
  }
}

TEST_CASE("WMMA fragments: exact products under both layouts, and layout assumptions exposed") {
  alignas(32) f16 a[256], b[256];
  alignas(32) float d[256];
  for (int i = 0; i < 256; ++i) {
    a[i] = f16::from_float(float(i % 7 - 3));
    b[i] = f16::from_float(float(i % 5 - 2) * 0.5f);
  }
  // D = A B + 1 with row 0 zeroed; B is read col-major: (k, n) at b[n * 16 + k].
  std::vector<float> expected(256);
  for (int r = 0; r < 16; ++r)
    for (int c = 0; c < 16; ++c) {
      float v = 1.0f;
      for (int k = 0; k < 16; ++k) v += a[r * 16 + k].to_float() * b[c * 16 + k].to_float();
      expected[std::size_t(r * 16 + c)] = r == 0 ? 0.0f : v;
    }
  auto mismatches = [&](bool assume_layout, emulate::FragmentLayout layout) {
    std::fill(std::begin(d), std::end(d), -1.0f);
    emulate::launch<TileProduct>({{1, 1, 1}, {32, 1, 1}, 640}, {a, b, d, assume_layout, 16, 0},
                                 {.fragments = layout, .seed = 99});
    int wrong = 0;
    for (int i = 0; i < 256; ++i) wrong += d[i] != expected[std::size_t(i)];
    return wrong;
  };
  CHECK(mismatches(false, emulate::FragmentLayout::natural) == 0);
  CHECK(mismatches(false, emulate::FragmentLayout::permuted) == 0);
  // The layout-dependent kernel happens to work under the natural layout only.
  CHECK(mismatches(true, emulate::FragmentLayout::natural) == 0);
  CHECK(mismatches(true, emulate::FragmentLayout::permuted) > 0);

  SUBCASE("WMMA's alignment rules are enforced") {
    CHECK(fault_of([&] {  // ldm 12 is not a multiple of 8 halves
            emulate::launch<TileProduct>({{1, 1, 1}, {32, 1, 1}, 640}, {a, b, d, false, 12, 0});
          }) == Fault::misaligned);
    CHECK(fault_of([&] {  // a shared tile 8 halves (16 bytes) past a 32-byte boundary
            emulate::launch<TileProduct>({{1, 1, 1}, {32, 1, 1}, 640}, {a, b, d, false, 16, 8});
          }) == Fault::misaligned);
  }
}

TEST_CASE("launches the GPU would refuse are refused") {
  const auto in = iota_floats(64);
  std::vector<float> out(64);
  CHECK(fault_of([&] {  // not whole warps
          emulate::launch<Neighbours>({{1, 1, 1}, {48, 1, 1}, 48 * 4}, {in.data(), out.data(), Bug::none});
        }) == Fault::bad_launch);
  CHECK(fault_of([&] {  // beyond the kernel's launch bound of 256 threads
          emulate::launch<Neighbours>({{1, 1, 1}, {512, 1, 1}, 512 * 4}, {in.data(), out.data(), Bug::none});
        }) == Fault::bad_launch);
  CHECK(fault_of([&] {  // more shared memory than a block may have
          emulate::launch<Neighbours>({{1, 1, 1}, {64, 1, 1}, 300 * 1024}, {in.data(), out.data(), Bug::none});
        }) == Fault::bad_launch);
}
