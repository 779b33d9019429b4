// The README's minimal example, kept compiling by the build.
#include <rlxf/rlxf.hpp>

int main() {
  rlxf::Rng rng(42);                                  // one seed fixes a run
  rlxf::nn::TransformerBlock<float> block(
      {.attention = {.d_model = 64, .n_heads = 4, .causal = true},
       .mlp = {.d_model = 64, .d_hidden = 256, .kind = rlxf::nn::MlpKind::gelu_tanh}},
      rng);
  rlxf::ParameterList<float> params;
  block.collect(params, "h.0.");
  rlxf::optim::AdamW<float> opt(params, {.lr = 3e-4});

  auto x = rlxf::zeros<float, 3>({2, 16, 64});         // (batch, time, channels)
  rng.fill_normal(rlxf::flat(x));
  rlxf::nn::TransformerBlock<float>::Cache cache;
  auto y = block.forward(x, {}, cache);                // forward fills the cache
  opt.zero_grad();
  block.backward(y, cache);                            // gradient of sum(y^2)/2
  opt.step();
}
