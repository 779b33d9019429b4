#pragma once
// The transformer's feed-forward network: GELU (GPT-2, BERT) or SwiGLU (LLaMA).
#include <cstddef>
#include <optional>
#include <string>

#include "rlxf/core/rng.hpp"
#include "rlxf/nn/backend.hpp"
#include "rlxf/nn/linear.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/nn/storage.hpp"

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

template <class B>
class BasicMlp {
 public:
  using T = typename B::value_type;
  struct Cache {
    typename BasicLinear<B>::Cache in;   // x, shared by fc / gate / up
    Activation<B> pre;                   // GELU: fc(x); SwiGLU: gate(x)
    Activation<B> up;                    // SwiGLU: up(x)
    typename BasicLinear<B>::Cache out;  // the activation fed to proj / down
    std::size_t bytes() const { return in.bytes() + held_bytes(pre, up) + out.bytes(); }
  };

  BasicMlp(const MlpConfig& cfg, Rng& rng, BackendRef<B> backend = {})
      : cfg_(cfg),
        fc(cfg.d_model, cfg.d_hidden, cfg.bias, rng, cfg.init_std, backend),
        up(cfg.kind == MlpKind::swiglu
               ? std::optional<BasicLinear<B>>(std::in_place, cfg.d_model, cfg.d_hidden, cfg.bias, rng, cfg.init_std,
                                               backend)
               : std::nullopt),
        proj(cfg.d_hidden, cfg.d_model, cfg.bias, rng, cfg.init_std, backend),
        backend_(backend) {}

  const MlpConfig& config() const { return cfg_; }

  // x (B, T, C) -> (B, T, C)
  Activation<B> forward(const Activation<B>& x, Cache& cache) const {
    B& b = backend_.get();
    cache.in.x = x;
    cache.pre = fc.apply(x);
    Activation<B> act = empty_activation(b, cache.pre.shape());
    const std::size_t n = act.size();
    if (cfg_.kind == MlpKind::swiglu) {
      cache.up = up->apply(x);
      b.swiglu_forward(cache.pre.data(), cache.up.data(), act.data(), n);
    } else {
      b.gelu_forward(cache.pre.data(), act.data(), n, gelu_form());
    }
    return proj.forward(act, cache.out);
  }

  Activation<B> backward(const Activation<B>& dy, const Cache& cache) {
    B& b = backend_.get();
    const Activation<B> dact = proj.backward(dy, cache.out);
    Activation<B> dpre = zero_activation(b, cache.pre.shape());
    const std::size_t n = dpre.size();
    if (cfg_.kind == MlpKind::swiglu) {
      Activation<B> dup = zero_activation(b, cache.up.shape());
      b.swiglu_backward(cache.pre.data(), cache.up.data(), dact.data(), dpre.data(), dup.data(), n);
      Activation<B> dx = fc.backward(dpre, cache.in);
      b.add(up->backward(dup, cache.in).data(), dx.data(), dx.size());
      return dx;
    }
    b.gelu_backward(cache.pre.data(), dact.data(), dpre.data(), n, gelu_form());
    return fc.backward(dpre, cache.in);
  }

  // Names follow LLaMA for SwiGLU (gate_proj, up_proj, down_proj) and GPT-2 otherwise (c_fc, c_proj).
  void collect(Params<B>& out, const std::string& prefix) {
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
  GeluForm gelu_form() const { return cfg_.kind == MlpKind::gelu_exact ? GeluForm::exact : GeluForm::tanh; }
  MlpConfig cfg_;

 public:
  BasicLinear<B> fc;                 // GELU: c_fc; SwiGLU: gate_proj
  std::optional<BasicLinear<B>> up;  // SwiGLU only: up_proj
  BasicLinear<B> proj;               // GELU: c_proj; SwiGLU: down_proj

 private:
  BackendRef<B> backend_;
};

template <class X>
using Mlp = BasicMlp<backend_for_t<X>>;

}  // namespace rlxf::nn
