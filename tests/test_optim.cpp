#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/parameter.hpp"
#include "rlxf/core/threading.hpp"
#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/clip.hpp"
#include "rlxf/optim/schedule.hpp"
#include "error_of.hpp"

using rlxf::Parameter;
using rlxf::ParameterList;
using namespace rlxf::optim;

namespace {
using rlxf::test::error_of;

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("Parameter: zero-filled value and grad of the given shape, zero_grad, empty default") {
  Parameter<float> p({2, 3});
  CHECK(p.size() == 6);
  REQUIRE(p.value.dimension() == 2);
  CHECK(p.value.shape()[0] == 2);
  CHECK(p.value.shape()[1] == 3);
  CHECK(p.grad.shape() == p.value.shape());
  for (std::size_t j = 0; j < 6; ++j) CHECK(p.value.data()[j] == 0.0f);
  for (std::size_t j = 0; j < 6; ++j) CHECK(p.grad.data()[j] == 0.0f);
  p.grad(1, 2) = 5.0f;
  p.value(1, 2) = 7.0f;
  p.zero_grad();
  CHECK(p.grad(1, 2) == 0.0f);
  CHECK(p.value(1, 2) == 7.0f);
  CHECK(Parameter<float>().size() == 0);
}

// With a constant gradient g, m_t = g (1 - beta1^t) and v_t = g^2 (1 - beta2^t), so the bias
// corrections give m_hat = g and v_hat = g^2 at every step, and each step is
//   p <- p - lr * (g / (|g| + eps) + wd * p)
TEST_CASE("AdamW with a constant gradient moves by lr * (g / (|g| + eps) + wd * p) per step") {
  // Enough elements to take the parallel path; a few gradients are 0 (only decay acts).
  const std::size_t n = 40000;
  Parameter<double> p({n});
  for (std::size_t j = 0; j < n; ++j) {
    p.value(j) = 1.0 - 0.0001 * static_cast<double>(j);
    p.grad(j) = j % 7 == 0 ? 0.0 : std::sin(static_cast<double>(j)) * 3.0;
  }
  const AdamWConfig cfg{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.99, .eps = 1e-8, .weight_decay = 0.1};
  std::vector<double> expected(p.value.begin(), p.value.end());
  AdamW<double> opt({{"w", &p}}, cfg);
  for (int t = 1; t <= 6; ++t) {
    opt.step();
    CHECK(opt.steps() == static_cast<std::size_t>(t));
    for (std::size_t j = 0; j < n; ++j) {
      const double g = p.grad(j);
      expected[j] -= cfg.lr * (g / (std::fabs(g) + cfg.eps) + cfg.weight_decay * expected[j]);
    }
    double worst = 0;
    for (std::size_t j = 0; j < n; ++j) worst = std::max(worst, std::fabs(p.value(j) - expected[j]));
    CHECK(worst < 1e-12);
  }
}

// Independent reference in long double, written in torch.optim.AdamW's algebraic form:
//   p *= 1 - lr * wd;  m, v as usual;  p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
TEST_CASE("AdamW with varying gradients and learning rates matches a long-double reference") {
  const std::vector<double> g_w = {0.3, -1.2, 0.05, 2.0, -0.7};   // gradient of "w" at t = 1..5
  const std::vector<double> g_b = {-0.4, 0.1, 0.9, -0.02, 0.6};   // gradient of "fc.bias"
  const std::vector<double> lrs = {1e-2, 3e-2, 2e-2, 5e-3, 4e-2};
  const AdamWConfig cfg{.lr = 0.0, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-6, .weight_decay = 0.2};

  Parameter<double> w({1}), b({1});
  w.value(0) = 0.8;
  b.value(0) = -0.5;
  AdamW<double> opt({{"w", &w}, {"fc.bias", &b}}, cfg, decay_except_bias_and_norm);
  CHECK(opt.decays(0));
  CHECK_FALSE(opt.decays(1));

  struct Ref {
    long double p, m = 0, v = 0, wd;
  };
  Ref rw{0.8L, 0, 0, 0.2L}, rb{-0.5L, 0, 0, 0.0L};
  const long double b1 = 0.9L, b2 = 0.95L, eps = 1e-6L;
  auto ref_step = [&](Ref& r, long double g, long double lr, int t) {
    r.p *= 1 - lr * r.wd;
    r.m = b1 * r.m + (1 - b1) * g;
    r.v = b2 * r.v + (1 - b2) * g * g;
    const long double c1 = 1 - std::pow(b1, static_cast<long double>(t));
    const long double c2 = 1 - std::pow(b2, static_cast<long double>(t));
    r.p -= (lr / c1) * r.m / (std::sqrt(r.v) / std::sqrt(c2) + eps);
  };
  for (int t = 1; t <= 5; ++t) {
    const auto k = static_cast<std::size_t>(t - 1);
    w.grad(0) = g_w[k];
    b.grad(0) = g_b[k];
    opt.step(lrs[k]);
    CHECK(opt.lr() == lrs[k]);
    CHECK(opt.config().lr == lrs[k]);
    ref_step(rw, g_w[k], lrs[k], t);
    ref_step(rb, g_b[k], lrs[k], t);
    CHECK(std::fabs(w.value(0) - static_cast<double>(rw.p)) < 1e-12);
    CHECK(std::fabs(b.value(0) - static_cast<double>(rb.p)) < 1e-12);
    CHECK(std::fabs(opt.first_moment(0)[0] - static_cast<double>(rw.m)) < 1e-15);
    CHECK(std::fabs(opt.second_moment(1)[0] - static_cast<double>(rb.v)) < 1e-15);
  }
  // The parameters really moved (a no-op optimizer would fail above, but make it explicit).
  CHECK(std::fabs(w.value(0) - 0.8) > 1e-3);
}

TEST_CASE("decay_except_bias_and_norm follows the Hugging Face naming convention") {
  // Decayed: weights of linear layers and embeddings.
  CHECK(decay_except_bias_and_norm("h.0.attn.c_attn.weight"));
  CHECK(decay_except_bias_and_norm("transformer.wte.weight"));
  CHECK(decay_except_bias_and_norm("model.layers.3.mlp.gate_proj.weight"));
  CHECK(decay_except_bias_and_norm("encoder.layer.0.attention.self.query.weight"));
  CHECK(decay_except_bias_and_norm("weight"));
  // Not decayed: biases, GPT-2 ln_*, LLaMA norms, BERT LayerNorm.
  CHECK_FALSE(decay_except_bias_and_norm("h.0.attn.c_attn.bias"));
  CHECK_FALSE(decay_except_bias_and_norm("bias"));
  CHECK_FALSE(decay_except_bias_and_norm("h.11.ln_1.weight"));
  CHECK_FALSE(decay_except_bias_and_norm("ln_f.weight"));
  CHECK_FALSE(decay_except_bias_and_norm("model.layers.0.input_layernorm.weight"));
  CHECK_FALSE(decay_except_bias_and_norm("model.layers.0.post_attention_layernorm.weight"));
  CHECK_FALSE(decay_except_bias_and_norm("model.norm.weight"));
  CHECK_FALSE(decay_except_bias_and_norm("encoder.layer.0.output.LayerNorm.weight"));
  CHECK_FALSE(decay_except_bias_and_norm("embeddings.LayerNorm.bias"));
  CHECK(decay_all("ln_f.weight"));
}

TEST_CASE("AdamW: excluded parameters take no weight decay, the default decays all") {
  // Zero gradients: the moments stay 0, so the only motion is decay: p <- p (1 - lr wd).
  Parameter<double> weight({3}), norm({3});
  for (std::size_t j = 0; j < 3; ++j) weight.value(j) = norm.value(j) = 1.0 + static_cast<double>(j);
  const ParameterList<double> list = {{"h.0.mlp.c_fc.weight", &weight}, {"h.0.ln_2.weight", &norm}};
  const AdamWConfig cfg{.lr = 0.1, .weight_decay = 0.5};
  AdamW<double> opt(list, cfg, decay_except_bias_and_norm);
  opt.step();
  for (std::size_t j = 0; j < 3; ++j) {
    CHECK(weight.value(j) == doctest::Approx((1.0 + static_cast<double>(j)) * 0.95).epsilon(1e-14));
    CHECK(norm.value(j) == 1.0 + static_cast<double>(j));
  }
  AdamW<double> all(list, cfg);
  all.step();
  CHECK(all.decays(1));
  CHECK(norm.value(0) == doctest::Approx(0.95).epsilon(1e-14));
  // A rule of the caller's own.
  AdamW<double> custom(list, cfg, [](std::string_view name) { return name.starts_with("h.0.ln"); });
  CHECK_FALSE(custom.decays(0));
  CHECK(custom.decays(1));
}

TEST_CASE("AdamW: zero_grad zeroes every gradient, lr changes take effect") {
  Parameter<float> a({2, 2}), c({5});
  a.grad.fill(1.5f);
  c.grad.fill(-2.0f);
  a.value.fill(1.0f);
  AdamW<float> opt({{"a", &a}, {"c", &c}}, {.lr = 0.0, .weight_decay = 0.1});
  // lr 0: nothing moves (but the moments accumulate).
  opt.step();
  for (const float x : a.value) CHECK(x == 1.0f);
  CHECK(opt.first_moment(0)[0] == doctest::Approx(0.15));
  opt.set_lr(0.01);
  CHECK(opt.lr() == 0.01);
  opt.step();
  for (const float x : a.value) CHECK(x < 1.0f);
  opt.zero_grad();
  for (const float x : a.grad) CHECK(x == 0.0f);
  for (const float x : c.grad) CHECK(x == 0.0f);
  CHECK(contains(error_of([&] { opt.set_lr(-1.0); }), "lr must be finite and >= 0"));
  CHECK(contains(error_of([&] { opt.step(std::numeric_limits<double>::quiet_NaN()); }), "lr"));
  CHECK(opt.lr() == 0.01);
  CHECK(opt.steps() == 2);
}

TEST_CASE("AdamW: a bad configuration or parameter list throws an error naming the problem") {
  Parameter<double> p({2});
  const ParameterList<double> list = {{"p", &p}};
  auto error_for = [&](AdamWConfig cfg) { return error_of([&] { AdamW<double> opt(list, cfg); }); };
  CHECK(error_for({}).empty());
  CHECK(error_for({.beta1 = 0.0, .beta2 = 0.0, .weight_decay = 0.0}).empty());
  CHECK(contains(error_for({.lr = -1e-3}), "AdamWConfig.lr"));
  CHECK(contains(error_for({.lr = std::numeric_limits<double>::infinity()}), "AdamWConfig.lr"));
  CHECK(contains(error_for({.beta1 = 1.0}), "AdamWConfig.beta1"));
  CHECK(contains(error_for({.beta1 = -0.1}), "AdamWConfig.beta1"));
  CHECK(contains(error_for({.beta2 = 1.0}), "AdamWConfig.beta2"));
  CHECK(contains(error_for({.beta2 = std::numeric_limits<double>::quiet_NaN()}), "AdamWConfig.beta2"));
  CHECK(contains(error_for({.eps = 0.0}), "AdamWConfig.eps"));
  CHECK(contains(error_for({.weight_decay = -0.01}), "AdamWConfig.weight_decay"));

  CHECK(contains(error_of([&] { AdamW<double> opt({{"p", &p}, {"again", &p}}); }), "appears twice"));
  CHECK(contains(error_of([&] { AdamW<double> opt({{"null", nullptr}}); }), "'null' is null"));
  AdamW<double> opt(list);
  p = Parameter<double>({3});
  CHECK(contains(error_of([&] { opt.step(); }), "'p' changed size"));
  CHECK(opt.steps() == 0);
}

// Gradients that depend on the parameters and the step, so that a resumed run diverges from
// the original unless every piece of state (moments, step count, lr) is restored.
template <class T>
void fill_grads(Parameter<T>& a, Parameter<T>& b, std::size_t step) {
  for (std::size_t j = 0; j < a.size(); ++j)
    a.grad.data()[j] = static_cast<T>(std::sin(3.0 * static_cast<double>(a.value.data()[j]) +
                                               static_cast<double>(step)));
  for (std::size_t j = 0; j < b.size(); ++j)
    b.grad.data()[j] = static_cast<T>(static_cast<double>(b.value.data()[j]) -
                                      0.1 * static_cast<double>(j + step));
}

TEST_CASE_TEMPLATE("AdamW: saving and restoring the state resumes bit-identically", T, float, double) {
  auto make = [](Parameter<T>& a, Parameter<T>& b) {
    a = Parameter<T>({4, 3});
    b = Parameter<T>({5});
    for (std::size_t j = 0; j < a.size(); ++j) a.value.data()[j] = static_cast<T>(0.1 * static_cast<double>(j) - 0.3);
    for (std::size_t j = 0; j < b.size(); ++j) b.value.data()[j] = static_cast<T>(0.5 - 0.2 * static_cast<double>(j));
  };
  const AdamWConfig cfg{.lr = 0.02, .beta1 = 0.85, .beta2 = 0.97, .eps = 1e-7, .weight_decay = 0.05};
  const LinearDecay schedule(0.05, 2, 10);

  // Run A: 3 steps, save, 2 more.
  Parameter<T> a, b;
  make(a, b);
  AdamW<T> opt({{"a.weight", &a}, {"b.bias", &b}}, cfg, decay_except_bias_and_norm);
  auto run = [&](AdamW<T>& o, Parameter<T>& x, Parameter<T>& y, std::size_t steps) {
    for (std::size_t s = 0; s < steps; ++s) {
      o.zero_grad();
      fill_grads(x, y, o.steps());
      o.step(schedule(o.steps()));
    }
  };
  run(opt, a, b, 3);
  const AdamWState<T> saved = opt.state();
  const Parameter<T> saved_a = a, saved_b = b;
  CHECK(saved.steps == 3);
  CHECK(saved.lr == schedule(2));
  run(opt, a, b, 2);

  // Run B: fresh parameters and optimizer from the saved values.
  Parameter<T> a2 = saved_a, b2 = saved_b;
  AdamW<T> resumed({{"a.weight", &a2}, {"b.bias", &b2}}, cfg, decay_except_bias_and_norm);
  resumed.restore(saved);
  CHECK(resumed.steps() == 3);
  CHECK(resumed.lr() == saved.lr);
  run(resumed, a2, b2, 2);
  CHECK(resumed.steps() == 5);
  for (std::size_t j = 0; j < a.size(); ++j) CHECK(a2.value.data()[j] == a.value.data()[j]);
  for (std::size_t j = 0; j < b.size(); ++j) CHECK(b2.value.data()[j] == b.value.data()[j]);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < opt.first_moment(i).size(); ++j) {
      CHECK(resumed.first_moment(i)[j] == opt.first_moment(i)[j]);
      CHECK(resumed.second_moment(i)[j] == opt.second_moment(i)[j]);
    }

  // Without the restore, the same two steps land elsewhere (the test can fail).
  Parameter<T> a3 = saved_a, b3 = saved_b;
  AdamW<T> fresh({{"a.weight", &a3}, {"b.bias", &b3}}, cfg, decay_except_bias_and_norm);
  run(fresh, a3, b3, 2);
  CHECK(a3.value.data()[0] != a.value.data()[0]);

  // A state for other parameters is refused, and the optimizer is left as it was.
  AdamWState<T> wrong = saved;
  wrong.second_moment[1].pop_back();
  CHECK(contains(error_of([&] { resumed.restore(wrong); }), "'b.bias' has 5 elements"));
  wrong = saved;
  wrong.first_moment.pop_back();
  CHECK(contains(error_of([&] { resumed.restore(wrong); }), "for 2 parameters"));
  CHECK(resumed.steps() == 5);
}

TEST_CASE("grad_norm and clip_grad_norm: 3-4-12 has norm 13") {
  Parameter<double> a({2}), b({1, 1});
  a.grad(0) = 3;
  a.grad(1) = 4;
  b.grad(0, 0) = -12;
  const ParameterList<double> list = {{"a", &a}, {"b", &b}};
  CHECK(grad_norm(list) == 13.0);

  SUBCASE("below or at max_norm: unchanged") {
    CHECK(clip_grad_norm(list, 20.0) == 13.0);
    CHECK(clip_grad_norm(list, 13.0) == 13.0);
    CHECK(a.grad(0) == 3.0);
    CHECK(a.grad(1) == 4.0);
    CHECK(b.grad(0, 0) == -12.0);
  }
  SUBCASE("above max_norm: every gradient scaled by max_norm / (norm + 1e-6)") {
    CHECK(clip_grad_norm(list, 6.5) == 13.0);
    const double scale = 6.5 / (13.0 + 1e-6);
    CHECK(a.grad(0) == doctest::Approx(3.0 * scale).epsilon(1e-15));
    CHECK(a.grad(1) == doctest::Approx(4.0 * scale).epsilon(1e-15));
    CHECK(b.grad(0, 0) == doctest::Approx(-12.0 * scale).epsilon(1e-15));
    CHECK(grad_norm(list) == doctest::Approx(6.5).epsilon(1e-6));
    CHECK(grad_norm(list) < 6.5);
  }
  SUBCASE("max_norm must be positive") {
    CHECK(contains(error_of([&] { clip_grad_norm(list, 0.0); }), "max_norm must be > 0"));
  }
}

TEST_CASE("clip_grad_norm: a NaN/Inf gradient throws naming the parameter and changes nothing") {
  Parameter<float> a({3}), b({2}), c({2});
  a.grad.fill(100.0f);
  b.grad(0) = 1.0f;
  b.grad(1) = std::numeric_limits<float>::quiet_NaN();
  c.grad(0) = std::numeric_limits<float>::infinity();
  const ParameterList<float> list = {{"h.0.attn.c_attn.weight", &a}, {"h.0.mlp.c_fc.bias", &b}, {"c", &c}};
  CHECK(std::isnan(grad_norm(list)));
  const std::string msg = error_of([&] { clip_grad_norm(list, 1.0); });
  CHECK(contains(msg, "gradient norm is NaN/Inf"));
  CHECK(contains(msg, "'h.0.mlp.c_fc.bias'"));
  CHECK(contains(msg, "flat index 1"));
  for (const float x : a.grad) CHECK(x == 100.0f);
  CHECK(b.grad(0) == 1.0f);
  CHECK(std::isnan(b.grad(1)));
  CHECK(std::isinf(c.grad(0)));

  b.grad(1) = 0.0f;  // now only the Inf remains
  CHECK(contains(error_of([&] { clip_grad_norm(list, 1.0); }), "parameter 'c'"));

  // Finite gradients whose squares overflow double.
  Parameter<double> big({2});
  big.grad.fill(1e200);
  CHECK(contains(error_of([&] { clip_grad_norm(ParameterList<double>{{"big", &big}}, 1.0); }),
                 "sum of squares overflows"));
  CHECK(big.grad(0) == 1e200);
}

TEST_CASE("grad_norm: accumulated in double, independent of the thread count") {
  // float gradients whose squares overflow float: the double accumulation keeps them.
  Parameter<float> f({2});
  f.grad(0) = 3e20f;
  f.grad(1) = 4e20f;
  CHECK(grad_norm(ParameterList<float>{{"f", &f}}) == doctest::Approx(5e20).epsilon(1e-6));

  // Many blocks: same bits with one thread and with several.
  Parameter<float> a({100003}), b({70001});
  for (std::size_t j = 0; j < a.size(); ++j) a.grad(j) = static_cast<float>(std::sin(0.37 * static_cast<double>(j)));
  for (std::size_t j = 0; j < b.size(); ++j) b.grad(j) = static_cast<float>(1e-3 * static_cast<double>(j % 101));
  const ParameterList<float> list = {{"a", &a}, {"b", &b}};
  const int threads = rlxf::max_threads();
  rlxf::set_threads(1);
  const double one = grad_norm(list);
  rlxf::set_threads(4);
  const double four = grad_norm(list);
  rlxf::set_threads(threads);
  CHECK(one == four);
  long double ref = 0;  // plain serial sum in long double
  for (const float x : a.grad) ref += static_cast<long double>(x) * x;
  for (const float x : b.grad) ref += static_cast<long double>(x) * x;
  CHECK(one == doctest::Approx(static_cast<double>(std::sqrt(ref))).epsilon(1e-13));
}

namespace {
// Hugging Face transformers' lr_lambda functions (optimization.py), transcribed literally.
double hf_linear_with_warmup(std::size_t current_step, std::size_t num_warmup_steps,
                             std::size_t num_training_steps) {
  const double step = static_cast<double>(current_step), warmup = static_cast<double>(num_warmup_steps),
               total = static_cast<double>(num_training_steps);
  if (step < warmup) return step / std::max(1.0, warmup);
  return std::max(0.0, (total - step) / std::max(1.0, total - warmup));
}
double hf_cosine_with_min_lr(std::size_t current_step, std::size_t num_warmup_steps,
                             std::size_t num_training_steps, double min_lr_rate) {
  const double step = static_cast<double>(current_step), warmup = static_cast<double>(num_warmup_steps),
               total = static_cast<double>(num_training_steps);
  const double num_cycles = 0.5;
  if (step < warmup) return step / std::max(1.0, warmup);
  const double progress = (step - warmup) / std::max(1.0, total - warmup);
  double factor = 0.5 * (1.0 + std::cos(std::acos(-1.0) * num_cycles * 2.0 * progress));
  factor = factor * (1 - min_lr_rate) + min_lr_rate;
  return std::max(0.0, factor);
}
double hf_constant_with_warmup(std::size_t current_step, std::size_t num_warmup_steps) {
  const double step = static_cast<double>(current_step), warmup = static_cast<double>(num_warmup_steps);
  if (step < warmup) return step / std::max(1.0, warmup);
  return 1.0;
}
}  // namespace

TEST_CASE("schedules: values at key steps") {
  const Constant constant(3e-4);
  CHECK(constant(0) == 3e-4);
  CHECK(constant(123456) == 3e-4);

  const LinearWarmup warmup(1e-3, 4);
  CHECK(warmup(0) == 0.0);
  CHECK(warmup(1) == doctest::Approx(0.25e-3).epsilon(1e-15));
  CHECK(warmup(3) == doctest::Approx(0.75e-3).epsilon(1e-15));
  CHECK(warmup(4) == 1e-3);
  CHECK(warmup(1000) == 1e-3);
  CHECK(LinearWarmup(1e-3, 0)(0) == 1e-3);

  const Cosine cosine(1.0, 10, 110, 0.1);
  CHECK(cosine(0) == 0.0);
  CHECK(cosine(5) == doctest::Approx(0.5).epsilon(1e-15));
  CHECK(cosine(10) == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(cosine(60) == doctest::Approx((1.0 + 0.1) / 2).epsilon(1e-15));  // midpoint
  CHECK(cosine(35) == doctest::Approx(0.1 + 0.9 * (1 + std::sqrt(0.5)) / 2).epsilon(1e-15));
  CHECK(cosine(110) == doctest::Approx(0.1).epsilon(1e-15));
  CHECK(cosine(500) == doctest::Approx(0.1).epsilon(1e-15));
  for (std::size_t s = 10; s < 110; ++s) CHECK(cosine(s + 1) < cosine(s));
  CHECK(Cosine(2.0, 0, 4)(2) == doctest::Approx(1.0).epsilon(1e-15));

  const LinearDecay decay(2.0, 5, 25);
  CHECK(decay(0) == 0.0);
  CHECK(decay(2) == doctest::Approx(0.8).epsilon(1e-15));
  CHECK(decay(5) == 2.0);
  CHECK(decay(15) == doctest::Approx(1.0).epsilon(1e-15));
  CHECK(decay(24) == doctest::Approx(0.1).epsilon(1e-15));
  CHECK(decay(25) == 0.0);
  CHECK(decay(1000) == 0.0);
}

TEST_CASE("schedules agree with Hugging Face's lr_lambda at every step (0-based)") {
  const double lr = 5e-5;
  const std::vector<std::pair<std::size_t, std::size_t>> cases = {{0, 10}, {3, 20}, {7, 8}};
  for (const auto& c : cases) {
    const std::size_t warmup = c.first, total = c.second;
    const LinearDecay linear(lr, warmup, total);
    const Cosine cosine(lr, warmup, total);
    const Cosine cosine_min(lr, warmup, total, 1e-5);
    const LinearWarmup constant(lr, warmup);
    for (std::size_t s = 0; s <= total + 5; ++s) {
      CAPTURE(warmup);
      CAPTURE(total);
      CAPTURE(s);
      CHECK(linear(s) == doctest::Approx(lr * hf_linear_with_warmup(s, warmup, total)).epsilon(1e-14));
      CHECK(constant(s) == doctest::Approx(lr * hf_constant_with_warmup(s, warmup)).epsilon(1e-14));
      if (s <= total) {  // past total_steps HF's cosine turns back up; rlxf holds min_lr
        CHECK(cosine(s) == doctest::Approx(lr * hf_cosine_with_min_lr(s, warmup, total, 0.0)).epsilon(1e-12));
        CHECK(cosine_min(s) == doctest::Approx(lr * hf_cosine_with_min_lr(s, warmup, total, 1e-5 / lr)).epsilon(1e-12));
      } else {
        CHECK(cosine(s) == doctest::Approx(0.0));
        CHECK(cosine_min(s) == doctest::Approx(1e-5).epsilon(1e-14));
      }
    }
  }
}

TEST_CASE("schedules: bad arguments throw naming them") {
  CHECK(contains(error_of([] { Constant(-1.0); }), "Constant.lr"));
  CHECK(contains(error_of([] { LinearWarmup(std::numeric_limits<double>::quiet_NaN(), 3); }), "LinearWarmup.lr"));
  CHECK(contains(error_of([] { Cosine(1.0, 10, 10); }), "Cosine.total_steps (10) must be > warmup_steps (10)"));
  CHECK(contains(error_of([] { Cosine(1.0, 0, 10, 2.0); }), "Cosine.min_lr"));
  CHECK(contains(error_of([] { Cosine(1.0, 0, 10, -0.1); }), "Cosine.min_lr"));
  CHECK(contains(error_of([] { LinearDecay(1.0, 5, 4); }), "LinearDecay.total_steps"));
  CHECK(contains(error_of([] { LinearDecay(-1.0, 0, 4); }), "LinearDecay.lr"));
  CHECK(error_of([] { LinearDecay(1.0, 4, 5); }).empty());
}

TEST_CASE("schedule driving an optimizer: update s uses schedule(s), so update 0 of a warm-up is a no-op") {
  static_assert(rlxf::Schedule<decltype([](std::size_t s) { return 1.0 / static_cast<double>(s + 1); })>);
  static_assert(!rlxf::Schedule<int>);
  Parameter<double> p({1});
  p.value(0) = 1.0;
  p.grad(0) = 1.0;
  const LinearDecay schedule(0.1, 2, 6);
  AdamW<double> opt({{"p", &p}}, {.weight_decay = 0.0});
  opt.step(schedule(opt.steps()));
  CHECK(opt.lr() == 0.0);
  CHECK(p.value(0) == 1.0);
  opt.step(schedule(opt.steps()));
  CHECK(opt.lr() == doctest::Approx(0.05));
  // Constant gradient: the step is lr * g / (|g| + eps).
  CHECK(p.value(0) == doctest::Approx(1.0 - 0.05 * 1.0 / (1.0 + 1e-8)).epsilon(1e-14));
}
