#pragma once
// The transformer's feed-forward network: GELU (GPT-2, BERT) or SwiGLU (LLaMA).
#include <cstddef>
#include <optional>
#include <string>

#include "rlxf/core/parameter.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/cpu/activations.hpp"
#include "rlxf/nn/linear.hpp"

namespace rlxf::nn {

enum class MlpKind {
  gelu_tanh,   // fc -> GELU (tanh approximation, GPT-2) -> proj
  gelu_exact,  // fc -> GELU (erf, BERT) -> proj
  swiglu,      // down(silu(gate(x)) * up(x)) (LLaMA)
};

struct MlpConfig {
  std::size_t d_model = 0;
  std::size_t d_hidden = 0;          // GPT-2: 4 d_model; LLaMA: about 8/3 d_model
  MlpKind kind = MlpKind::gelu_tanh;
  bool bias = true;                  // GPT-2 and BERT: true; LLaMA: false
  double init_std = 0.02;
};

template <class T>
class Mlp {
 public:
  struct Cache {
    typename Linear<T>::Cache in;   // x, shared by fc / gate / up
    Activation<T> pre;              // GELU: fc(x); SwiGLU: gate(x)
    Activation<T> up;               // SwiGLU: up(x)
    typename Linear<T>::Cache out;  // the activation fed to proj / down
  };

  Mlp(const MlpConfig& cfg, Rng& rng)
      : cfg_(cfg),
        fc(cfg.d_model, cfg.d_hidden, cfg.bias, rng, cfg.init_std),
        up(cfg.kind == MlpKind::swiglu ? std::optional<Linear<T>>(std::in_place, cfg.d_model, cfg.d_hidden, cfg.bias, rng, cfg.init_std)
                                       : std::nullopt),
        proj(cfg.d_hidden, cfg.d_model, cfg.bias, rng, cfg.init_std) {}

  const MlpConfig& config() const { return cfg_; }

  // x (B, T, C) -> (B, T, C)
  Activation<T> forward(const Activation<T>& x, Cache& cache) const {
    cache.in.x = x;
    cache.pre = fc.apply(x);
    Activation<T> act(cache.pre.shape());
    const std::size_t n = act.size();
    if (cfg_.kind == MlpKind::swiglu) {
      cache.up = up->apply(x);
      cpu::swiglu_forward<T>(cache.pre.data(), cache.up.data(), act.data(), n);
    } else {
      cpu::gelu_forward<T>(cache.pre.data(), act.data(), n, gelu_form());
    }
    return proj.forward(act, cache.out);
  }

  Activation<T> backward(const Activation<T>& dy, const Cache& cache) {
    const Activation<T> dact = proj.backward(dy, cache.out);
    Activation<T> dpre = zeros<T, 3>(cache.pre.shape());
    const std::size_t n = dpre.size();
    if (cfg_.kind == MlpKind::swiglu) {
      Activation<T> dup = zeros<T, 3>(cache.up.shape());
      cpu::swiglu_backward<T>(cache.pre.data(), cache.up.data(), dact.data(), dpre.data(), dup.data(), n);
      Activation<T> dx = fc.backward(dpre, cache.in);
      dx += up->backward(dup, cache.in);
      return dx;
    }
    cpu::gelu_backward<T>(cache.pre.data(), dact.data(), dpre.data(), n, gelu_form());
    return fc.backward(dpre, cache.in);
  }

  // Names follow LLaMA for SwiGLU (gate_proj, up_proj, down_proj) and GPT-2 otherwise (c_fc, c_proj).
  void collect(ParameterList<T>& out, const std::string& prefix) {
    if (cfg_.kind == MlpKind::swiglu) {
      fc.collect(out, prefix + "gate_proj.");
      up->collect(out, prefix + "up_proj.");
      proj.collect(out, prefix + "down_proj.");
    } else {
      fc.collect(out, prefix + "c_fc.");
      proj.collect(out, prefix + "c_proj.");
    }
  }

 private:
  cpu::GeluForm gelu_form() const {
    return cfg_.kind == MlpKind::gelu_exact ? cpu::GeluForm::exact : cpu::GeluForm::tanh;
  }
  MlpConfig cfg_;

 public:
  Linear<T> fc;                 // GELU: c_fc; SwiGLU: gate_proj
  std::optional<Linear<T>> up;  // SwiGLU only: up_proj
  Linear<T> proj;               // GELU: c_proj; SwiGLU: down_proj
};

}  // namespace rlxf::nn
