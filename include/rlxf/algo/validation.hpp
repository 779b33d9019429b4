#pragma once
// Shared argument checks and scalar helpers of rlxf::algo (internal: every call is written
// `internal::name` from inside rlxf::algo). Conventions of the algo headers:
//   - tensors are spans over row-major buffers with explicit shapes: (B, L) is a batch of B
//     response sequences of L token positions (the T of the formulas in docs/algorithms.md);
//   - a mask is a span of std::uint8_t, 1 = valid response token, 0 = prompt or padding;
//     entries under mask 0 are never read (they may hold garbage such as TRL's
//     INVALID_LOGPROB = 1.0, or -inf) and per-token outputs there are written as 0;
//   - inputs read by a function must be finite: a NaN or infinity is rejected with an
//     rlxf::Error naming the argument and the index (b, t) of the bad entry.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "rlxf/core/error.hpp"
#include "rlxf/core/range.hpp"

namespace rlxf::algo::internal {

// ln(1 + e^x) without overflow or cancellation: max(x, 0) + log1p(e^{-|x|}).
inline double softplus(double x) { return std::max(x, 0.0) + std::log1p(std::exp(-std::abs(x))); }

// 1 / (1 + e^{-x}), evaluated on the side where the exponential cannot overflow.
inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  const double e = std::exp(x);
  return e / (1.0 + e);
}

// Throws unless `got` == `want`; `shape` names the expected shape, e.g. "(B, L)".
inline void require_size(const char* fn, const char* name, std::size_t got, std::size_t want,
                         const char* shape) {
  if (got != want) ::rlxf::fail(fn, ": ", name, " has ", got, " entries, expected ", shape, " = ", want);
}

// As require_size, but an empty span (an optional argument or output left out) is accepted.
inline void require_size_or_empty(const char* fn, const char* name, std::size_t got, std::size_t want,
                                  const char* shape) {
  if (got != 0 && got != want)
    ::rlxf::fail(fn, ": ", name, " has ", got, " entries, expected ", shape, " = ", want, " or none");
}

// Throws unless every mask entry is 0 or 1.
inline void require_mask_values(const char* fn, std::span<const std::uint8_t> mask, std::size_t L) {
  for (std::size_t i = 0; i < mask.size(); ++i)
    if (mask[i] > 1) {
      if (L > 0)
        ::rlxf::fail(fn, ": mask[", i / L, ", ", i % L, "] = ", int(mask[i]), ", expected 0 or 1");
      ::rlxf::fail(fn, ": mask[", i, "] = ", int(mask[i]), ", expected 0 or 1");
    }
}

// Throws unless every entry of x under a valid mask entry (all entries when the mask is
// empty) is finite. L > 0 reports the index as (b, t).
template <class T>
void require_finite(const char* fn, const char* name, std::span<const T> x,
                    std::span<const std::uint8_t> mask = {}, std::size_t L = 0) {
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!mask.empty() && mask[i] == 0) continue;
    const auto v = static_cast<double>(x[i]);
    if (!std::isfinite(v)) {
      if (L > 0) ::rlxf::fail(fn, ": ", name, "[", i / L, ", ", i % L, "] = ", v, " is not finite");
      ::rlxf::fail(fn, ": ", name, "[", i, "] = ", v, " is not finite");
    }
  }
}

// Throws unless the scalar option `v` is finite (and, with `positive`, > 0).
inline void require_finite_option(const char* fn, const char* name, double v, bool positive = false) {
  if (!std::isfinite(v) || (positive && !(v > 0)))
    ::rlxf::fail(fn, ": ", name, " = ", v, ", expected finite", positive ? " and > 0" : "");
}

// The optimizer fields every algorithm config has, each against its range:
// "<owner>.lr = 0: expected a finite number in (0, 1]".
inline void require_optimizer_options(std::string_view owner, double lr, double weight_decay, double max_grad_norm) {
  const auto field = [&](const char* name) { return ::rlxf::detail::concat(owner, ".", name); };
  require_in(field("lr"), lr, Range::above(0, 1));
  require_in(field("weight_decay"), weight_decay, Range::closed(0, 1));
  require_in(field("max_grad_norm"), max_grad_norm, Range::closed(0, 1e6));  // 0 = no clipping
}

// The valid tokens of row b of a (B, L) mask as [first, last) (first == last when the row is
// empty). Throws if they are not contiguous (a hole inside a response).
inline std::pair<std::size_t, std::size_t> valid_span(const char* fn, std::span<const std::uint8_t> mask,
                                                      std::size_t b, std::size_t L) {
  std::size_t first = L, last = 0;
  for (std::size_t t = 0; t < L; ++t)
    if (mask[b * L + t]) {
      if (first == L) first = t;
      last = t + 1;
    }
  if (first == L) return {0, 0};
  for (std::size_t t = first; t < last; ++t)
    if (!mask[b * L + t])
      ::rlxf::fail(fn, ": row ", b, " of mask has a hole at t = ", t,
                   ": valid response tokens must be contiguous");
  return {first, last};
}

}  // namespace rlxf::algo::internal
