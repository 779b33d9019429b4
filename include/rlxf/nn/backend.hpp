#pragma once
// How the layers and models reach the backend they compute on (concepts.hpp,
// TrainingBackend). Every layer and model is a class template over a backend B
// (nn::BasicLinear<B>, model::BasicDecoder<B>, ...); the familiar names take either a backend
// or a scalar type, which stands for the CPU backend of that type:
//   nn::Linear<float>  = nn::BasicLinear<cpu::Backend<float>>
//   nn::Linear<double> = nn::BasicLinear<cpu::Backend<double>>   (finite-difference checks)
//   nn::Linear<B>      = nn::BasicLinear<B>                       for a backend B
// What the layers keep in a backend's memory (activations, arrays) is in nn/storage.hpp,
// their parameters in nn/parameter.hpp.
#include <cstddef>
#include <type_traits>

#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
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
