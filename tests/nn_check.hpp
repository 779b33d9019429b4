#pragma once
// Test support for nn layers: finite-difference checks of a layer's input and parameter
// gradients, and f32-vs-f64 agreement.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "gradcheck.hpp"
#include "rlxf/core/parameter.hpp"
#include "rlxf/nn/linear.hpp"

namespace rlxf::test {

using Act = nn::Activation<double>;

// A random activation (B, T, C) from N(0, 1).
template <class T = double>
nn::Activation<T> random_activation(std::size_t b, std::size_t t, std::size_t c, std::uint64_t seed) {
  nn::Activation<T> x({b, t, c});
  const auto v = random_normal<T>(x.size(), seed);
  std::copy(v.begin(), v.end(), x.begin());
  return x;
}

// Checks, for L = sum(w * forward(x)) with random w, the gradient that `backward` returns for
// x and the gradients it accumulates into `params`, against central differences. `forward`
// must run the layer (filling the cache `backward` reads); `backward(dy)` returns dx.
// Reports the worst error per tensor; each must stay below `tol`.
inline void check_layer_gradients(ParameterList<double> params, Act& x,
                                  const std::function<Act(const Act&)>& forward,
                                  const std::function<Act(const Act&)>& backward,
                                  double tol = 1e-6, std::size_t stride = 1) {
  const Act y = forward(x);
  const std::vector<double> w = random_normal(y.size(), 99);
  Act dy(y.shape());
  std::copy(w.begin(), w.end(), dy.begin());
  for (auto& p : params) p.param->zero_grad();
  const Act dx = backward(dy);
  auto loss = [&] {
    const Act out = forward(x);
    return weighted_sum({out.data(), out.size()}, w);
  };
  const GradCheck rx = check_gradient({x.data(), x.size()}, {dx.data(), dx.size()}, loss, 1e-3, stride);
  INFO("input: worst entry ", rx.worst, " analytic ", rx.analytic, " numeric ", rx.numeric);
  CHECK(rx.max_error < tol);
  for (auto& p : params) {
    const std::vector<double> g(p.param->grad.begin(), p.param->grad.end());
    const GradCheck r = check_gradient({p.param->value.data(), p.param->value.size()}, g, loss, 1e-3, stride);
    INFO("parameter ", p.name, ": max error ", r.max_error, " at ", r.worst, " analytic ", r.analytic,
         " numeric ", r.numeric);
    CHECK(r.max_error < tol);
  }
}

}  // namespace rlxf::test
