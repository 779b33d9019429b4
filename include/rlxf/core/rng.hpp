#pragma once
// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11, "Parallel random
// numbers: as easy as 1, 2, 3"). Value i of a stream is a pure function of (seed, stream, i),
// so a fill split across any number of threads yields the same numbers bit for bit.
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>

#include "rlxf/core/threading.hpp"

namespace rlxf {

struct Philox4x32 {
  using Counter = std::array<std::uint32_t, 4>;
  using Key = std::array<std::uint32_t, 2>;

  // The ten-round Philox4x32 bijection of `ctr` under `key`.
  static constexpr Counter block(Counter ctr, Key key) {
    constexpr std::uint32_t m0 = 0xD2511F53u, m1 = 0xCD9E8D57u;
    constexpr std::uint32_t w0 = 0x9E3779B9u, w1 = 0xBB67AE85u;
    for (int round = 0; round < 10; ++round) {
      const std::uint64_t p0 = std::uint64_t{m0} * ctr[0];
      const std::uint64_t p1 = std::uint64_t{m1} * ctr[2];
      const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
      const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
      ctr = {hi1 ^ ctr[1] ^ key[0], lo1, hi0 ^ ctr[3] ^ key[1], lo0};
      key[0] += w0;
      key[1] += w1;
    }
    return ctr;
  }
};

// A stream of random numbers addressed by index. `seed` picks the key, `stream` separates
// independent uses under one seed (e.g. dropout of layer 3 vs. sampling), the index picks the
// value. The sequential calls (`next_*`) advance `offset`, which is all the state there is:
// save (seed, stream, offset) and a run resumes exactly.
class Rng {
 public:
  explicit constexpr Rng(std::uint64_t seed = 0, std::uint64_t stream = 0, std::uint64_t offset = 0)
      : seed_(seed), stream_(stream), offset_(offset) {}

  constexpr std::uint64_t seed() const { return seed_; }
  constexpr std::uint64_t stream() const { return stream_; }
  constexpr std::uint64_t offset() const { return offset_; }

  // A generator for a sub-stream, e.g. one per layer: independent of this one.
  constexpr Rng split(std::uint64_t child) const {
    const auto mixed = Philox4x32::block(
        {lo(stream_), hi(stream_), lo(child), hi(child)}, {lo(seed_) ^ 0xA5A5A5A5u, hi(seed_)});
    return Rng(seed_, (std::uint64_t{mixed[1]} << 32) | mixed[0]);
  }

  // Four 32-bit words of block `b`.
  constexpr Philox4x32::Counter block(std::uint64_t b) const {
    return Philox4x32::block({lo(b), hi(b), lo(stream_), hi(stream_)}, {lo(seed_), hi(seed_)});
  }
  // The i-th 32-bit word of the stream.
  constexpr std::uint32_t bits(std::uint64_t i) const { return block(i / 4)[i % 4]; }
  // The i-th uniform in [0, 1), 24 random bits (every value exact in float).
  constexpr float uniform(std::uint64_t i) const { return to_unit(bits(i)); }
  // The i-th standard normal: Box-Muller on words (2k, 2k+1) of the stream, cosine for even i,
  // sine for odd i.
  double normal(std::uint64_t i) const {
    const auto blk = block(i / 4);
    const std::size_t pair = (i % 4) / 2;
    // u1 in (0, 1] so the log is finite; u2 in [0, 1).
    const double u1 = (static_cast<double>(blk[2 * pair]) + 1.0) * 0x1p-32;
    const double u2 = static_cast<double>(blk[2 * pair + 1]) * 0x1p-32;
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * std::numbers::pi * u2;
    return (i % 2 == 0) ? r * std::cos(angle) : r * std::sin(angle);
  }

  // Sequential draws: each consumes one index of the stream.
  constexpr std::uint32_t next_bits() { return bits(offset_++); }
  constexpr float next_uniform() { return uniform(offset_++); }
  double next_normal() { return normal(offset_++); }
  // Uniform integer in [0, n) (Lemire's multiply-shift; bias below 2^-32 * n).
  constexpr std::uint32_t next_below(std::uint32_t n) {
    return static_cast<std::uint32_t>((std::uint64_t{next_bits()} * n) >> 32);
  }

  // Fills `out` with uniforms in [lo, hi) / normals N(mean, std), consuming out.size()
  // indices. Parallel, and the result does not depend on the thread count.
  template <class T>
  void fill_uniform(std::span<T> out, double lo_v = 0.0, double hi_v = 1.0) {
    const std::uint64_t base = offset_;
    parallel_for(out.size(), [&](std::size_t k) {
      out[k] = static_cast<T>(lo_v + (hi_v - lo_v) * uniform(base + k));
    });
    offset_ += out.size();
  }
  template <class T>
  void fill_normal(std::span<T> out, double mean = 0.0, double std_dev = 1.0) {
    const std::uint64_t base = offset_;
    parallel_for(out.size(), [&](std::size_t k) {
      out[k] = static_cast<T>(mean + std_dev * normal(base + k));
    });
    offset_ += out.size();
  }

 private:
  static constexpr std::uint32_t lo(std::uint64_t v) { return static_cast<std::uint32_t>(v); }
  static constexpr std::uint32_t hi(std::uint64_t v) { return static_cast<std::uint32_t>(v >> 32); }
  static constexpr float to_unit(std::uint32_t b) { return static_cast<float>(b >> 8) * 0x1p-24f; }

  std::uint64_t seed_;
  std::uint64_t stream_;
  std::uint64_t offset_;
};

}  // namespace rlxf
