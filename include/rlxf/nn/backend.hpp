#pragma once
// How the layers and models reach the backend they compute on (concepts.hpp,
// TrainingBackend). Every layer and model is a class template over a backend B
// (nn::BasicLinear<B>, model::BasicDecoder<B>, ...); the familiar names take either a backend
// or a scalar type, which stands for the CPU backend of that type:
//   nn::Linear<float>  = nn::BasicLinear<cpu::Backend<float>>
//   nn::Linear<double> = nn::BasicLinear<cpu::Backend<double>>   (finite-difference checks)
//   nn::Linear<B>      = nn::BasicLinear<B>                       for a backend B
// Activations are Activation<B>: host tensors (xtensor), which the CPU backends compute on
// in place.
#include <cstddef>
#include <type_traits>

#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/cpu/backend.hpp"

namespace rlxf::nn {

// The backend a layer name's argument stands for: float and double name the CPU backend of
// that type, a backend names itself.
template <class X>
struct backend_for {
  static_assert(TrainingBackend<X>, "a layer or model takes a TrainingBackend, or float / double for the CPU");
  using type = X;
};
template <>
struct backend_for<float> {
  using type = cpu::Backend<float>;
};
template <>
struct backend_for<double> {
  using type = cpu::Backend<double>;
};
template <class X>
using backend_for_t = typename backend_for<X>::type;

// Activations flowing between layers, (batch, time, channels), in the backend's value type
// (X: a backend, or float / double).
template <class X>
using Activation = Tensor<typename backend_for_t<X>::value_type, 3>;

// Bytes held by the given containers (tensors, vectors): what a layer's cache keeps for the
// backward, as the caches' bytes() count it.
template <class... Containers>
std::size_t held_bytes(const Containers&... c) {
  return ((c.size() * sizeof(typename Containers::value_type)) + ... + std::size_t{0});
}

// A layer's handle on its backend. The CPU backends hold no state, so a default handle
// reaches one shared instance; a backend with state (a GPU's stream and workspace) is
// handed to the model that uses it and must outlive it.
template <class B>
class BackendRef {
 public:
  BackendRef() requires std::is_empty_v<B> = default;
  explicit BackendRef(B& backend) : backend_(&backend) {}

  B& get() const {
    if constexpr (std::is_empty_v<B>) {
      static B shared;
      return backend_ ? *backend_ : shared;
    } else {
      return *backend_;
    }
  }

 private:
  B* backend_ = nullptr;
};

}  // namespace rlxf::nn
