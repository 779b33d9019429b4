#pragma once
// Linear layer: y = x W^T + b, W stored (out, in) as PyTorch's nn.Linear does.
#include <cstddef>
#include <string>

#include "rlxf/core/parameter.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/cpu/gemm.hpp"

namespace rlxf::nn {

// Activations flowing between layers are (batch, time, channels).
template <class T>
using Activation = Tensor<T, 3>;

template <class T>
class Linear {
 public:
  struct Cache {
    Activation<T> x;  // (B, T, in)
  };

  // Weights drawn from N(0, init_std^2) (GPT-2 and BERT use 0.02), bias zero.
  Linear(std::size_t in, std::size_t out, bool with_bias, Rng& rng, double init_std = 0.02)
      : weight({out, in}), bias(with_bias ? Parameter<T>({out}) : Parameter<T>()), in_(in), out_(out) {
    RLXF_REQUIRE(in > 0 && out > 0, "Linear needs in > 0 and out > 0, got ", in, " and ", out);
    rng.fill_normal(std::span<T>(weight.value.data(), weight.size()), 0.0, init_std);
  }

  std::size_t in_features() const { return in_; }
  std::size_t out_features() const { return out_; }
  bool has_bias() const { return bias.size() > 0; }

  // x (B, T, in) -> y (B, T, out).
  Activation<T> forward(const Activation<T>& x, Cache& cache) const {
    cache.x = x;
    return apply(x);
  }
  // The same without keeping a cache (inference).
  Activation<T> apply(const Activation<T>& x) const {
    const auto& sh = x.shape();
    if (sh[2] != in_) fail("Linear: input has ", sh[2], " features, the layer takes ", in_);
    const std::size_t n = sh[0] * sh[1];
    Activation<T> y({sh[0], sh[1], out_});
    if (has_bias()) {
      for (std::size_t r = 0; r < n; ++r)
        std::copy_n(bias.value.data(), out_, y.data() + r * out_);
    }
    cpu::gemm<T>(cpu::Trans::no, cpu::Trans::yes, n, out_, in_, T(1), x.data(), in_,
                 weight.value.data(), in_, has_bias() ? T(1) : T(0), y.data(), out_);
    return y;
  }

  // dy (B, T, out) -> dx (B, T, in); dW += dy^T x, db += column sums of dy.
  Activation<T> backward(const Activation<T>& dy, const Cache& cache) {
    const auto& sh = cache.x.shape();
    require_shape(dy, {sh[0], sh[1], out_}, "Linear::backward dy");
    const std::size_t n = sh[0] * sh[1];
    Activation<T> dx = zeros<T, 3>({sh[0], sh[1], in_});
    cpu::gemm<T>(cpu::Trans::no, cpu::Trans::no, n, in_, out_, T(1), dy.data(), out_,
                 weight.value.data(), in_, T(0), dx.data(), in_);
    cpu::gemm<T>(cpu::Trans::yes, cpu::Trans::no, out_, in_, n, T(1), dy.data(), out_,
                 cache.x.data(), in_, T(1), weight.grad.data(), in_);
    if (has_bias()) {
      T* db = bias.grad.data();
      for (std::size_t r = 0; r < n; ++r)
        for (std::size_t o = 0; o < out_; ++o) db[o] += dy.data()[r * out_ + o];
    }
    return dx;
  }

  void collect(ParameterList<T>& out, const std::string& prefix) {
    out.push_back({prefix + "weight", &weight});
    if (has_bias()) out.push_back({prefix + "bias", &bias});
  }

  Parameter<T> weight;  // (out, in)
  Parameter<T> bias;    // (out), or empty without bias

 private:
  std::size_t in_, out_;
};

}  // namespace rlxf::nn
