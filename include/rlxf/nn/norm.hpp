#pragma once
// Normalisation layers over the channel dimension: LayerNorm (GPT-2, BERT) and RMSNorm
// (LLaMA), and Norm, which is either, chosen at run time by a model's config.
#include <cstddef>
#include <string>
#include <variant>

#include "rlxf/core/parameter.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/cpu/layernorm.hpp"
#include "rlxf/cpu/rmsnorm.hpp"
#include "rlxf/nn/linear.hpp"

namespace rlxf::nn {

template <class T>
class LayerNorm {
 public:
  struct Cache {
    Activation<T> x;
    Tensor<T, 1> mean, rstd;  // (B*T)
  };

  // gamma = 1, beta = 0; eps 1e-5 (GPT-2; BERT uses 1e-12).
  explicit LayerNorm(std::size_t dim, double eps = 1e-5, bool with_bias = true)
      : weight({dim}), bias(with_bias ? Parameter<T>({dim}) : Parameter<T>()), eps_(eps) {
    RLXF_REQUIRE(dim > 0 && eps > 0, "LayerNorm needs dim > 0 and eps > 0");
    weight.value.fill(T(1));
  }

  // x (B, T, C) -> (B, T, C)
  Activation<T> forward(const Activation<T>& x, Cache& cache) const {
    const auto [n, c] = rows_of(x);
    cache.x = x;
    cache.mean = zeros<T, 1>({n});
    cache.rstd = zeros<T, 1>({n});
    Activation<T> y(x.shape());
    cpu::layernorm_forward<T>(x.data(), weight.value.data(), bias_data(), y.data(),
                              cache.mean.data(), cache.rstd.data(), n, c, static_cast<T>(eps_));
    return y;
  }
  Activation<T> backward(const Activation<T>& dy, const Cache& cache) {
    const auto [n, c] = rows_of(cache.x);
    require_shape(dy, {cache.x.shape()[0], cache.x.shape()[1], c}, "LayerNorm::backward dy");
    Activation<T> dx = zeros<T, 3>({cache.x.shape()[0], cache.x.shape()[1], c});
    cpu::layernorm_backward<T>(dy.data(), cache.x.data(), weight.value.data(), cache.mean.data(),
                               cache.rstd.data(), dx.data(), weight.grad.data(),
                               bias.size() ? bias.grad.data() : nullptr, n, c);
    return dx;
  }
  void collect(ParameterList<T>& out, const std::string& prefix) {
    out.push_back({prefix + "weight", &weight});
    if (bias.size()) out.push_back({prefix + "bias", &bias});
  }

  Parameter<T> weight;  // gamma (C)
  Parameter<T> bias;    // beta (C), or empty

 private:
  const T* bias_data() const { return bias.size() ? bias.value.data() : nullptr; }
  std::pair<std::size_t, std::size_t> rows_of(const Activation<T>& x) const {
    const std::size_t c = x.shape()[2];
    if (c != weight.size()) fail("LayerNorm: input has ", c, " channels, the layer takes ", weight.size());
    return {x.shape()[0] * x.shape()[1], c};
  }
  double eps_;
};

template <class T>
class RMSNorm {
 public:
  struct Cache {
    Activation<T> x;
    Tensor<T, 1> rstd;  // (B*T)
  };

  // gamma = 1; eps 1e-6 (LLaMA's rms_norm_eps is 1e-6 or 1e-5 by release).
  explicit RMSNorm(std::size_t dim, double eps = 1e-6) : weight({dim}), eps_(eps) {
    RLXF_REQUIRE(dim > 0 && eps > 0, "RMSNorm needs dim > 0 and eps > 0");
    weight.value.fill(T(1));
  }

  // x (B, T, C) -> (B, T, C)
  Activation<T> forward(const Activation<T>& x, Cache& cache) const {
    const std::size_t c = x.shape()[2], n = x.shape()[0] * x.shape()[1];
    if (c != weight.size()) fail("RMSNorm: input has ", c, " channels, the layer takes ", weight.size());
    cache.x = x;
    cache.rstd = zeros<T, 1>({n});
    Activation<T> y(x.shape());
    cpu::rmsnorm_forward<T>(x.data(), weight.value.data(), y.data(), cache.rstd.data(), n, c,
                            static_cast<T>(eps_));
    return y;
  }
  Activation<T> backward(const Activation<T>& dy, const Cache& cache) {
    const std::size_t c = cache.x.shape()[2], n = cache.x.shape()[0] * cache.x.shape()[1];
    require_shape(dy, {cache.x.shape()[0], cache.x.shape()[1], c}, "RMSNorm::backward dy");
    Activation<T> dx = zeros<T, 3>({cache.x.shape()[0], cache.x.shape()[1], c});
    cpu::rmsnorm_backward<T>(dy.data(), cache.x.data(), weight.value.data(), cache.rstd.data(),
                             dx.data(), weight.grad.data(), n, c);
    return dx;
  }
  void collect(ParameterList<T>& out, const std::string& prefix) {
    out.push_back({prefix + "weight", &weight});
  }

  Parameter<T> weight;  // gamma (C)

 private:
  double eps_;
};

enum class NormKind { layer_norm, rms_norm };

// LayerNorm or RMSNorm, picked by `kind`.
template <class T>
class Norm {
 public:
  using Cache = std::variant<typename LayerNorm<T>::Cache, typename RMSNorm<T>::Cache>;

  Norm(NormKind kind, std::size_t dim, double eps)
      : layer_(kind == NormKind::layer_norm ? Layer(LayerNorm<T>(dim, eps)) : Layer(RMSNorm<T>(dim, eps))) {}

  NormKind kind() const { return layer_.index() == 0 ? NormKind::layer_norm : NormKind::rms_norm; }

  Activation<T> forward(const Activation<T>& x, Cache& cache) const {
    return std::visit(
        [&](const auto& layer) {
          using C = typename std::decay_t<decltype(layer)>::Cache;
          return layer.forward(x, cache.template emplace<C>());
        },
        layer_);
  }
  Activation<T> backward(const Activation<T>& dy, const Cache& cache) {
    return std::visit(
        [&](auto& layer) {
          using C = typename std::decay_t<decltype(layer)>::Cache;
          return layer.backward(dy, std::get<C>(cache));
        },
        layer_);
  }
  void collect(ParameterList<T>& out, const std::string& prefix) {
    std::visit([&](auto& layer) { layer.collect(out, prefix); }, layer_);
  }

 private:
  using Layer = std::variant<LayerNorm<T>, RMSNorm<T>>;
  Layer layer_;
};

}  // namespace rlxf::nn
