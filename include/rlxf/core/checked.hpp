#pragma once
// Size arithmetic on numbers an input decides (a config's token budget, a file's shape, a
// batch layout): the exact result, or an rlxf::Error naming what was being computed, never a
// silently wrapped size that would allocate too little and write past the end.
//
//   const std::size_t n = checked_mul(batch, checked_add(prompt, new_tokens, "positions"), "tokens");
#include <cstddef>
#include <initializer_list>
#include <string_view>

#include "rlxf/core/error.hpp"

namespace rlxf {

inline std::size_t checked_add(std::size_t a, std::size_t b, std::string_view what) {
  std::size_t r = 0;
  if (__builtin_add_overflow(a, b, &r)) fail(what, ": ", a, " + ", b, " overflows a 64-bit size");
  return r;
}

inline std::size_t checked_mul(std::size_t a, std::size_t b, std::string_view what) {
  std::size_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) fail(what, ": ", a, " x ", b, " overflows a 64-bit size");
  return r;
}

// The product of `dims` (a shape's element count).
inline std::size_t checked_product(std::initializer_list<std::size_t> dims, std::string_view what) {
  std::size_t r = 1;
  for (const std::size_t d : dims) r = checked_mul(r, d, what);
  return r;
}

}  // namespace rlxf
