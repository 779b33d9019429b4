#pragma once
// Normalisation layers over the channel dimension: LayerNorm (GPT-2, BERT) and RMSNorm
// (LLaMA), and Norm, which is either, chosen at run time by a model's config.
#include <cstddef>
#include <string>
#include <variant>

#include "rlxf/nn/backend.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/nn/storage.hpp"

namespace rlxf::nn {

template <class B>
class BasicLayerNorm {
 public:
  using T = typename B::value_type;
  struct Cache {
    Activation<B> x;
    Array<B, typename B::accum_type> mean, rstd;  // (B*T)
    std::size_t bytes() const { return held_bytes(x, mean, rstd); }
  };

  // gamma = 1, beta = 0; eps 1e-5 (GPT-2; BERT uses 1e-12).
  explicit BasicLayerNorm(std::size_t dim, double eps = 1e-5, bool with_bias = true, BackendRef<B> backend = {})
      : weight(new_param(backend.get(), {dim})),
        bias(with_bias ? new_param(backend.get(), {dim}) : Param<B>()),
        eps_(eps),
        backend_(backend) {
    RLXF_REQUIRE(dim > 0 && eps > 0, "LayerNorm needs dim > 0 and eps > 0");
    fill_constant(weight, 1.0);
  }

  // x (B, T, C) -> (B, T, C)
  Activation<B> forward(const Activation<B>& x, Cache& cache) const {
    const auto [n, c] = rows_of(x);
    B& b = backend_.get();
    cache.x = x;
    cache.mean = zeros_array<typename B::accum_type>(b, n);
    cache.rstd = zeros_array<typename B::accum_type>(b, n);
    Activation<B> y = empty_activation(b, x.shape());
    b.layernorm_forward(x.data(), weight.value.data(), bias_data(), y.data(), cache.mean.data(), cache.rstd.data(), n,
                        c, eps_);
    return y;
  }
  Activation<B> backward(const Activation<B>& dy, const Cache& cache) {
    const auto [n, c] = rows_of(cache.x);
    require_shape(dy, {cache.x.shape()[0], cache.x.shape()[1], c}, "LayerNorm::backward dy");
    Activation<B> dx = zero_activation(backend_.get(), {cache.x.shape()[0], cache.x.shape()[1], c});
    backend_.get().layernorm_backward(dy.data(), cache.x.data(), weight.value.data(), cache.mean.data(),
                                      cache.rstd.data(), dx.data(), weight.grad.data(),
                                      bias.size() ? bias.grad.data() : nullptr, n, c);
    return dx;
  }
  void collect(Params<B>& out, const std::string& prefix) {
    out.push_back({prefix + "weight", &weight});
    if (bias.size()) out.push_back({prefix + "bias", &bias});
  }

  Param<B> weight;  // gamma (C)
  Param<B> bias;    // beta (C), or empty

 private:
  const T* bias_data() const { return bias.size() ? bias.value.data() : nullptr; }
  std::pair<std::size_t, std::size_t> rows_of(const Activation<B>& x) const {
    const std::size_t c = x.shape()[2];
    if (c != weight.size()) fail("LayerNorm: input has ", c, " channels, the layer takes ", weight.size());
    return {x.shape()[0] * x.shape()[1], c};
  }
  double eps_;
  BackendRef<B> backend_;
};

template <class B>
class BasicRMSNorm {
 public:
  using T = typename B::value_type;
  struct Cache {
    Activation<B> x;
    Array<B, typename B::accum_type> rstd;  // (B*T)
    std::size_t bytes() const { return held_bytes(x, rstd); }
  };

  // gamma = 1; eps 1e-6 (LLaMA's rms_norm_eps is 1e-6 or 1e-5 by release).
  explicit BasicRMSNorm(std::size_t dim, double eps = 1e-6, BackendRef<B> backend = {})
      : weight(new_param(backend.get(), {dim})), eps_(eps), backend_(backend) {
    RLXF_REQUIRE(dim > 0 && eps > 0, "RMSNorm needs dim > 0 and eps > 0");
    fill_constant(weight, 1.0);
  }

  // x (B, T, C) -> (B, T, C)
  Activation<B> forward(const Activation<B>& x, Cache& cache) const {
    const std::size_t c = x.shape()[2], n = x.shape()[0] * x.shape()[1];
    if (c != weight.size()) fail("RMSNorm: input has ", c, " channels, the layer takes ", weight.size());
    B& b = backend_.get();
    cache.x = x;
    cache.rstd = zeros_array<typename B::accum_type>(b, n);
    Activation<B> y = empty_activation(b, x.shape());
    b.rmsnorm_forward(x.data(), weight.value.data(), y.data(), cache.rstd.data(), n, c, eps_);
    return y;
  }
  Activation<B> backward(const Activation<B>& dy, const Cache& cache) {
    const std::size_t c = cache.x.shape()[2], n = cache.x.shape()[0] * cache.x.shape()[1];
    require_shape(dy, {cache.x.shape()[0], cache.x.shape()[1], c}, "RMSNorm::backward dy");
    Activation<B> dx = zero_activation(backend_.get(), {cache.x.shape()[0], cache.x.shape()[1], c});
    backend_.get().rmsnorm_backward(dy.data(), cache.x.data(), weight.value.data(), cache.rstd.data(), dx.data(),
                                    weight.grad.data(), n, c);
    return dx;
  }
  void collect(Params<B>& out, const std::string& prefix) {
    out.push_back({prefix + "weight", &weight});
  }

  Param<B> weight;  // gamma (C)

 private:
  double eps_;
  BackendRef<B> backend_;
};

enum class NormKind { layer_norm, rms_norm };

// LayerNorm or RMSNorm, picked by `kind`.
template <class B>
class BasicNorm {
 public:
  using T = typename B::value_type;
  using Cache = std::variant<typename BasicLayerNorm<B>::Cache, typename BasicRMSNorm<B>::Cache>;

  BasicNorm(NormKind kind, std::size_t dim, double eps, BackendRef<B> backend = {})
      : layer_(kind == NormKind::layer_norm ? Layer(BasicLayerNorm<B>(dim, eps, true, backend))
                                            : Layer(BasicRMSNorm<B>(dim, eps, backend))) {}

  // Bytes the cache keeps for the backward.
  static std::size_t bytes(const Cache& cache) {
    return std::visit([](const auto& c) { return c.bytes(); }, cache);
  }

  NormKind kind() const { return layer_.index() == 0 ? NormKind::layer_norm : NormKind::rms_norm; }

  Activation<B> forward(const Activation<B>& x, Cache& cache) const {
    return std::visit(
        [&](const auto& layer) {
          using C = typename std::decay_t<decltype(layer)>::Cache;
          return layer.forward(x, cache.template emplace<C>());
        },
        layer_);
  }
  Activation<B> backward(const Activation<B>& dy, const Cache& cache) {
    return std::visit(
        [&](auto& layer) {
          using C = typename std::decay_t<decltype(layer)>::Cache;
          return layer.backward(dy, std::get<C>(cache));
        },
        layer_);
  }
  void collect(Params<B>& out, const std::string& prefix) {
    std::visit([&](auto& layer) { layer.collect(out, prefix); }, layer_);
  }

 private:
  using Layer = std::variant<BasicLayerNorm<B>, BasicRMSNorm<B>>;
  Layer layer_;
};

template <class X>
using LayerNorm = BasicLayerNorm<backend_for_t<X>>;
template <class X>
using RMSNorm = BasicRMSNorm<backend_for_t<X>>;
template <class X>
using Norm = BasicNorm<backend_for_t<X>>;

}  // namespace rlxf::nn
