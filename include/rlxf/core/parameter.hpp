#pragma once
// Trainable parameters. A layer owns its Parameters (value and gradient side by side); an
// optimizer, a gradient clipper or a checkpoint writer sees them through a ParameterList of
// named references, so the layer decides what is trainable and under which name.
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>

namespace rlxf {

// A trainable tensor and its gradient, same shape. `backward` accumulates into `grad`
// (+=), so gradients must be zeroed before each accumulation round (zero_grad).
// A default-constructed Parameter is empty: shape (0), no elements.
template <class T>
struct Parameter {
  xt::xarray<T, xt::layout_type::row_major> value =
      xt::xarray<T, xt::layout_type::row_major>::from_shape({0});
  xt::xarray<T, xt::layout_type::row_major> grad =
      xt::xarray<T, xt::layout_type::row_major>::from_shape({0});

  Parameter() = default;
  // Value and grad of the given shape, zero-filled.
  explicit Parameter(std::vector<std::size_t> shape)
      : value(xt::zeros<T>(shape)), grad(xt::zeros<T>(std::move(shape))) {}

  // Number of elements (the product of the shape).
  std::size_t size() const { return value.size(); }
  void zero_grad() { grad.fill(T(0)); }
};

// A named view of one parameter P (a Parameter<T>, or a model's parameter on another
// backend: nn/parameter.hpp). Names follow Hugging Face conventions, e.g.
// "h.0.attn.c_attn.weight" (GPT-2) or "model.layers.0.input_layernorm.weight" (LLaMA), so
// checkpoints load real weights and name-based rules (no weight decay on biases and norm
// weights) work. The parameter must outlive every reference to it.
template <class P>
struct BasicParameterRef {
  std::string name;
  P* param;
};

template <class T>
using ParameterRef = BasicParameterRef<Parameter<T>>;

template <class T>
using ParameterList = std::vector<ParameterRef<T>>;

}  // namespace rlxf
