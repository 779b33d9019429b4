// Builds against the installed package and checks a result: one AdamW step on a linear
// layer must lower a squared-error loss.
#include <cstdio>

#include <rlxf/rlxf.hpp>

int main() {
  rlxf::Rng rng(7);
  rlxf::nn::Linear<float> layer(4, 2, /*with_bias=*/true, rng);
  rlxf::nn::Linear<float>::Cache cache;
  rlxf::nn::Activation<float> x({1, 3, 4});
  rng.fill_normal(rlxf::flat(x));

  rlxf::ParameterList<float> params;
  layer.collect(params, "");
  rlxf::optim::AdamW<float> opt(params, {.lr = 1e-2, .weight_decay = 0.0});

  auto loss_of = [](const rlxf::nn::Activation<float>& y) {
    float s = 0;
    for (float v : y) s += 0.5f * v * v;
    return s;
  };
  const auto y = layer.forward(x, cache);
  const float before = loss_of(y);
  opt.zero_grad();
  layer.backward(y, cache);  // dL/dy = y for L = sum(y^2) / 2
  opt.step();
  const float after = loss_of(layer.apply(x));
  std::printf("rlxf consumer: loss %.6f -> %.6f\n", static_cast<double>(before), static_cast<double>(after));
  return after < before ? 0 : 1;
}
