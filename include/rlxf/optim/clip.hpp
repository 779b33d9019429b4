#pragma once
// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_:
//   norm = sqrt(sum over all parameters p, all elements j of grad_p[j]^2)
//   if norm > max_norm:  grad_p[j] *= max_norm / (norm + 1e-6)   for every p, j
//
// The norm is reduced in double and is deterministic: the gradients are cut into blocks of
// kNormBlock elements (per parameter; a parameter's last block may be shorter), each block's
// sum of squares is accumulated in element order, and the block sums are then added in
// (parameter, block) order. The blocks depend only on the shapes, so the result is the same
// bit for bit for any thread count.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/parameter.hpp"
#include "rlxf/core/threading.hpp"

namespace rlxf::optim {

namespace detail {
inline constexpr std::size_t kNormBlock = std::size_t{1} << 14;
}  // namespace detail

// The global L2 norm of all gradients (NaN or Inf when a gradient is, or when the sum of
// squares overflows double).
template <class T>
double grad_norm(const ParameterList<T>& params) {
  struct Block {
    const T* data;
    std::size_t size;
  };
  std::vector<Block> blocks;
  for (const auto& ref : params) {
    RLXF_REQUIRE(ref.param != nullptr, "parameter '", ref.name, "' is null");
    const T* g = ref.param->grad.data();
    const std::size_t n = ref.param->grad.size();
    for (std::size_t begin = 0; begin < n; begin += detail::kNormBlock)
      blocks.push_back({g + begin, std::min(detail::kNormBlock, n - begin)});
  }
  std::vector<double> sums(blocks.size(), 0.0);
  parallel_for(blocks.size(), [&](std::size_t b) {
    double s = 0;
    for (std::size_t j = 0; j < blocks[b].size; ++j) {
      const double x = static_cast<double>(blocks[b].data[j]);
      s += x * x;
    }
    sums[b] = s;
  });
  double total = 0;
  for (const double s : sums) total += s;
  return std::sqrt(total);
}

// Clips all gradients to a global L2 norm of at most `max_norm` (> 0) and returns the norm
// before clipping. A NaN/Inf norm throws rlxf::Error naming the first parameter (in list order)
// with a non-finite gradient, and leaves every gradient untouched.
template <class T>
double clip_grad_norm(const ParameterList<T>& params, double max_norm) {
  RLXF_REQUIRE(max_norm > 0, "max_norm must be > 0, got ", max_norm);
  const double norm = grad_norm(params);
  if (!std::isfinite(norm)) {
    for (const auto& ref : params) {
      const auto& g = ref.param->grad;
      for (std::size_t j = 0; j < g.size(); ++j)
        if (!std::isfinite(static_cast<double>(g.data()[j])))
          fail("gradient norm is NaN/Inf: parameter '", ref.name, "' has gradient ",
               g.data()[j], " at flat index ", j);
    }
    fail("gradient norm is NaN/Inf: every gradient is finite but their sum of squares "
         "overflows double");
  }
  if (norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const auto& ref : params) {
      T* g = ref.param->grad.data();
      parallel_for(
          ref.param->grad.size(),
          [=](std::size_t j) { g[j] = static_cast<T>(static_cast<double>(g[j]) * scale); },
          detail::kNormBlock);
    }
  }
  return norm;
}

}  // namespace rlxf::optim
