#pragma once
// Linear layer: y = x W^T + b, W stored (out, in) as PyTorch's nn.Linear does.
#include <cstddef>
#include <string>

#include "rlxf/core/rng.hpp"
#include "rlxf/nn/backend.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/nn/storage.hpp"

namespace rlxf::nn {

template <class B>
class BasicLinear {
 public:
  using T = typename B::value_type;
  struct Cache {
    Activation<B> x;  // (B, T, in)
    std::size_t bytes() const { return held_bytes(x); }
  };

  // Weights drawn from N(0, init_std^2) (GPT-2 and BERT use 0.02), bias zero.
  BasicLinear(std::size_t in, std::size_t out, bool with_bias, Rng& rng, double init_std = 0.02,
              BackendRef<B> backend = {})
      : weight(new_param(backend.get(), {out, in})),
        bias(with_bias ? new_param(backend.get(), {out}) : Param<B>()),
        in_(in),
        out_(out),
        backend_(backend) {
    RLXF_REQUIRE(in > 0 && out > 0, "Linear needs in > 0 and out > 0, got ", in, " and ", out);
    fill_normal(weight, rng, init_std);
  }

  std::size_t in_features() const { return in_; }
  std::size_t out_features() const { return out_; }
  bool has_bias() const { return bias.size() > 0; }

  // x (B, T, in) -> y (B, T, out).
  Activation<B> forward(const Activation<B>& x, Cache& cache) const {
    cache.x = x;
    return apply(x);
  }
  // The same without keeping a cache (inference).
  Activation<B> apply(const Activation<B>& x) const {
    const auto& sh = x.shape();
    if (sh[2] != in_) fail("Linear: input has ", sh[2], " features, the layer takes ", in_);
    const std::size_t n = sh[0] * sh[1];
    B& b = backend_.get();
    Activation<B> y = empty_activation(b, {sh[0], sh[1], out_});
    b.gemm_epilogue(Transpose::no, Transpose::yes, n, out_, in_, 1.0f, x.data(), in_, weight.value.data(), in_, 0.0f,
                    y.data(), out_, has_bias() ? master_data(bias) : nullptr, GemmEpilogue::none);
    return y;
  }

  // dy (B, T, out) -> dx (B, T, in); dW += dy^T x, db += column sums of dy.
  Activation<B> backward(const Activation<B>& dy, const Cache& cache) {
    const auto& sh = cache.x.shape();
    require_shape(dy, {sh[0], sh[1], out_}, "Linear::backward dy");
    const std::size_t n = sh[0] * sh[1];
    B& b = backend_.get();
    Activation<B> dx = empty_activation(b, {sh[0], sh[1], in_});
    b.gemm(Transpose::no, Transpose::no, n, in_, out_, 1.0f, dy.data(), out_, weight.value.data(), in_, 0.0f,
           dx.data(), in_);
    b.gemm_accumulate(Transpose::yes, Transpose::no, out_, in_, n, 1.0f, dy.data(), out_, cache.x.data(), in_,
                      weight.grad.data(), in_);
    if (has_bias()) b.bias_backward(dy.data(), bias.grad.data(), n, out_);
    return dx;
  }

  void collect(Params<B>& out, const std::string& prefix) {
    out.push_back({prefix + "weight", &weight});
    if (has_bias()) out.push_back({prefix + "bias", &bias});
  }

  Param<B> weight;  // (out, in)
  Param<B> bias;    // (out), or empty without bias

 private:
  std::size_t in_, out_;
  BackendRef<B> backend_;
};

template <class X>
using Linear = BasicLinear<backend_for_t<X>>;

}  // namespace rlxf::nn
