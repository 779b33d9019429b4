#pragma once
// WMMA fragments on the CPU: per lane, the same element counts CUDA gives m16n16k16
// fragments (f16 A/B: 16, each element held by two lanes; bf16 A/B: 8; f32 accumulator: 8),
// in a plain array `x` kernels may update elementwise. Which (row, column) a lane's element
// i is comes from a FragmentMap, natural or seed-permuted (see Options::fragments).
#include <array>
#include <cstdint>
#include <numeric>
#include <type_traits>

#include "rlxf/core/dtype.hpp"
#include "rlxf/cuda/emulate/options.hpp"
#include "rlxf/cuda/platform.hpp"
#include "rlxf/cuda/wmma_tags.hpp"

namespace rlxf::cuda::emulate {

template <class Use, int M, int N, int K, class T, class Layout = void>
struct Fragment {
  static_assert(M == 16 && N == 16 && K == 16,
                "the emulator implements WMMA's m16n16k16 shape only");
  static constexpr bool is_operand =
      std::is_same_v<Use, wmma::matrix_a> || std::is_same_v<Use, wmma::matrix_b>;
  static_assert(!is_operand || std::is_same_v<T, f16> || std::is_same_v<T, bf16>,
                "WMMA operand fragments hold f16 or bf16");
  static_assert(!is_operand || std::is_same_v<Layout, wmma::row_major> ||
                    std::is_same_v<Layout, wmma::col_major>,
                "an operand fragment names its memory layout (row_major or col_major)");
  static_assert(is_operand || (std::is_same_v<Use, wmma::accumulator> &&
                               std::is_same_v<T, float> && std::is_void_v<Layout>),
                "accumulator fragments are f32 and take their layout at load/store time");
  using element_type = T;
  using use = Use;
  using layout = Layout;
  static constexpr int num_elements = std::is_same_v<T, f16> ? 16 : 8;
  T x[num_elements];
};

// The kinds of fragment with a map of their own.
enum class FragmentKind { a_f16, b_f16, a_bf16, b_bf16, accumulator, count };

template <class Fragment>
constexpr FragmentKind kind_of() {
  using U = typename Fragment::use;
  using T = typename Fragment::element_type;
  if constexpr (std::is_same_v<U, wmma::accumulator>) return FragmentKind::accumulator;
  else if constexpr (std::is_same_v<U, wmma::matrix_a>)
    return std::is_same_v<T, f16> ? FragmentKind::a_f16 : FragmentKind::a_bf16;
  else return std::is_same_v<T, f16> ? FragmentKind::b_f16 : FragmentKind::b_bf16;
}

// map[lane * num_elements + i] = row * 16 + column of the logical tile (A: M x K, B: K x N,
// accumulator: M x N). With 16 elements a lane (512 slots), every element appears twice.
class FragmentMap {
 public:
  FragmentMap() = default;
  FragmentMap(FragmentKind kind, FragmentLayout layout, std::uint64_t seed) {
    slots_ = (kind == FragmentKind::a_f16 || kind == FragmentKind::b_f16) ? 512 : 256;
    std::array<std::uint16_t, 512> order{};
    std::iota(order.begin(), order.begin() + slots_, std::uint16_t{0});
    if (layout == FragmentLayout::permuted) {  // Fisher-Yates with a splitmix64 stream
      std::uint64_t s = seed ^ (0x9e3779b97f4a7c15ull * (static_cast<std::uint64_t>(kind) + 1));
      for (int i = slots_ - 1; i > 0; --i) {
        s += 0x9e3779b97f4a7c15ull;
        std::uint64_t z = s;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        const int j = static_cast<int>(z % static_cast<std::uint64_t>(i + 1));
        std::swap(order[static_cast<std::size_t>(i)], order[static_cast<std::size_t>(j)]);
      }
    }
    for (int k = 0; k < slots_; ++k)
      map_[static_cast<std::size_t>(k)] = static_cast<std::uint16_t>(order[static_cast<std::size_t>(k)] % 256);
  }
  // Logical element (row * 16 + column) of lane's element i.
  int operator()(int lane, int i, int num_elements) const {
    return map_[static_cast<std::size_t>(lane * num_elements + i)];
  }

 private:
  int slots_ = 256;
  std::array<std::uint16_t, 512> map_{};
};

}  // namespace rlxf::cuda::emulate
