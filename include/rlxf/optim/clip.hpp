#pragma once
// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_:
//   norm = sqrt(sum over all parameters p, all elements j of grad_p[j]^2)
//   if norm > max_norm:  grad_p[j] *= max_norm / (norm + 1e-6)   for every p, j
//
// The norm is reduced in double and is deterministic: each parameter's sum of squares is the
// backend's sum_of_squares (on the CPU: blocks of a fixed size, each summed in element order,
// then the block sums in order; on a GPU a fixed reduction tree), and the parameters' sums
// are added in list order; the gradients of a device optimizer's arena (nn/parameter.hpp) are
// one sum_of_squares and one scale. Nothing depends on the thread count, so the result is the
// same bit for bit for any.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/parameter.hpp"
#include "rlxf/nn/parameter.hpp"

namespace rlxf::optim {

// The global L2 norm of all gradients (NaN or Inf when a gradient is, or when the sum of
// squares overflows double). P: host Parameter<T> or a device parameter (nn/parameter.hpp).
template <class P>
double grad_norm(const std::vector<BasicParameterRef<P>>& params) {
  if constexpr (!nn::host_memory<typename nn::parameter_traits<P>::backend>)
    if (const auto arena = nn::arena_gradients(params))  // one pass over an optimizer's arena
      return std::sqrt(nn::backend_of(*params.front().param).sum_of_squares(arena->data(), arena->size()));
  double total = 0;
  for (const auto& ref : params) {
    RLXF_REQUIRE(ref.param != nullptr, "parameter '", ref.name, "' is null");
    if (ref.param->grad.size() != 0)
      total += nn::backend_of(*ref.param).sum_of_squares(ref.param->grad.data(), ref.param->grad.size());
  }
  return std::sqrt(total);
}

// Clips all gradients to a global L2 norm of at most `max_norm` (> 0) and returns the norm
// before clipping. A NaN/Inf norm throws rlxf::Error naming the first parameter (in list order)
// with a non-finite gradient, and leaves every gradient untouched.
template <class P>
double clip_grad_norm(const std::vector<BasicParameterRef<P>>& params, double max_norm) {
  RLXF_REQUIRE(max_norm > 0, "max_norm must be > 0, got ", max_norm);
  const double norm = grad_norm(params);
  if (!std::isfinite(norm)) {
    for (const auto& ref : params) {
      const auto g = nn::grads_of(*ref.param);
      for (std::size_t j = 0; j < g.size(); ++j)
        if (!std::isfinite(static_cast<double>(g[j])))
          fail("gradient norm is NaN/Inf: parameter '", ref.name, "' has gradient ", g[j], " at flat index ", j);
    }
    fail("gradient norm is NaN/Inf: every gradient is finite but their sum of squares "
         "overflows double");
  }
  if (norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    if constexpr (!nn::host_memory<typename nn::parameter_traits<P>::backend>)
      if (const auto arena = nn::arena_gradients(params)) {
        nn::backend_of(*params.front().param).scale(arena->data(), arena->size(), scale);
        return norm;
      }
    for (const auto& ref : params)
      if (ref.param->grad.size() != 0) nn::backend_of(*ref.param).scale(ref.param->grad.data(), ref.param->grad.size(), scale);
  }
  return norm;
}

}  // namespace rlxf::optim
