#pragma once
// Host tensors. What users see and pass in (activations, token batches, masks, rewards,
// parameters) is an xtensor container, row-major; kernels take raw pointers or spans with
// explicit shapes. Views are xtensor's own (xt::view, xt::reshape_view).
#include <array>
#include <cstddef>
#include <span>
#include <string>

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

#include "rlxf/core/checked.hpp"
#include "rlxf/core/error.hpp"

namespace rlxf {

// A row-major host tensor of rank N.
template <class T, std::size_t N>
using Tensor = xt::xtensor<T, N, xt::layout_type::row_major>;

// A zero-filled tensor of the given shape. Build tensors with this (or Tensor::from_shape):
// beware that `Tensor<T, 1>({n})` is a one-element tensor holding n, not n elements.
// A shape whose element count or byte size overflows is an rlxf::Error, not a wrapped size.
template <class T, std::size_t N>
Tensor<T, N> zeros(const std::array<std::size_t, N>& shape) {
  std::size_t elements = 1;
  for (const std::size_t d : shape) elements = checked_mul(elements, d, "tensor shape");
  checked_mul(elements, sizeof(T), "tensor bytes");
  Tensor<T, N> t(shape);
  t.fill(T(0));
  return t;
}

// The tensor's elements as one contiguous span (row-major order).
template <class T, std::size_t N>
std::span<T> flat(Tensor<T, N>& t) {
  return {t.data(), t.size()};
}
template <class T, std::size_t N>
std::span<const T> flat(const Tensor<T, N>& t) {
  return {t.data(), t.size()};
}

// Shape as text, e.g. "(2, 3, 4)", for error messages.
template <class Shape>
std::string shape_string(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + ")";
}

// Throws unless `t` has exactly `shape`; `what` names the tensor in the message.
template <class T, std::size_t N>
void require_shape(const Tensor<T, N>& t, const std::array<std::size_t, N>& shape,
                   const char* what) {
  for (std::size_t i = 0; i < N; ++i)
    if (t.shape()[i] != shape[i])
      fail(what, ": expected shape ", shape_string(shape), ", got ", shape_string(t.shape()));
}

}  // namespace rlxf
