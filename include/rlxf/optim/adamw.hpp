#pragma once
// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019), with the update
// of torch.optim.AdamW. For each element, at step t = 1, 2, ... with gradient g:
//   m     = beta1 * m + (1 - beta1) * g            first moment (running mean of g)
//   v     = beta2 * v + (1 - beta2) * g^2          second moment (running mean of g^2)
//   m_hat = m / (1 - beta1^t)                      bias corrections (m and v start at 0)
//   v_hat = v / (1 - beta2^t)
//   p     = p - lr * (m_hat / (sqrt(v_hat) + eps) + wd * p)
// The decay term wd * p is decoupled: it is applied to the parameter directly, not added to
// the gradient (which would make it pass through the adaptive scaling, as in Adam + L2).
// Parameters excluded from weight decay (see DecayRule) take the same update with wd = 0.
//
// Moments are stored in the parameters' accumulation type (as PyTorch stores them in the
// parameter's dtype; f32 master weights on a GPU); on the CPU each new m, v and p is computed
// in double from the stored values and rounded once (cpu::Backend::adamw). The update is
// elementwise, so splitting it across threads never changes a result.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/parameter.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/nn/storage.hpp"

namespace rlxf::optim {

struct AdamWConfig {
  double lr = 1e-3;            // learning rate; torch.optim.AdamW's default
  double beta1 = 0.9;          // decay of the first moment; torch's default (Kingma & Ba)
  double beta2 = 0.999;        // decay of the second moment; torch's default (Kingma & Ba)
  double eps = 1e-8;           // added to sqrt(v_hat) so the step stays finite; torch's default
  double weight_decay = 0.01;  // decoupled decay coefficient wd; torch.optim.AdamW's default
};

// Decides from a parameter's name whether weight decay applies to it (true = decay).
using DecayRule = std::function<bool(std::string_view name)>;

// Every parameter decays: torch.optim.AdamW given one parameter group.
inline bool decay_all(std::string_view /*name*/) { return true; }

// The Hugging Face / PyTorch fine-tuning convention (transformers.Trainer's default groups):
// no decay on biases and on LayerNorm/RMSNorm weights, decay on everything else (embeddings
// included). From the Hugging Face name alone: a parameter does not decay when its last
// component is "bias", or when the module holding it (the component before the last) contains
// "norm" in any case (BERT "LayerNorm", LLaMA "input_layernorm" and "norm") or starts with
// "ln_" (GPT-2 "ln_1", "ln_2", "ln_f").
inline bool decay_except_bias_and_norm(std::string_view name) {
  const std::size_t last_dot = name.rfind('.');
  const std::string_view leaf = last_dot == std::string_view::npos ? name : name.substr(last_dot + 1);
  if (leaf == "bias") return false;
  if (last_dot == std::string_view::npos) return true;
  const std::string_view path = name.substr(0, last_dot);
  const std::size_t module_dot = path.rfind('.');
  const std::string_view module =
      module_dot == std::string_view::npos ? path : path.substr(module_dot + 1);
  std::string lower(module);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  return lower.find("norm") == std::string::npos && !lower.starts_with("ln_");
}

// Everything AdamW needs to resume exactly: a restored optimizer given the same gradients takes
// bit-identical steps. Moments are listed in the ParameterList's order, each flattened
// row-major; a checkpoint stores them under the parameters' names (AdamW::params()).
template <class T>
struct AdamWState {
  std::size_t steps = 0;                        // updates taken (t of the last update)
  double lr = 0;                                // current learning rate
  std::vector<std::vector<T>> first_moment;     // m, one vector per parameter
  std::vector<std::vector<T>> second_moment;    // v, one vector per parameter
};

// AdamW over parameters P of one backend: host Parameter<T> (AdamW<T>), or a model's
// DeviceParameter<B> on a GPU backend (nn/parameter.hpp), whose master values it updates in
// the accumulation type and then rounds into the working values. The update is the
// backend's adamw: on the host one call a parameter; on a device the optimizer packs its
// parameters into one arena (decaying ones first, then the rest) with its moments beside them,
// and a step is one adamw launch (AdamWStep::decayed marks where the decaying group ends) and
// one cast, whatever the number of parameters. (Should another optimizer repack the same
// parameters, this one sees it and updates them one by one.)
template <class P>
class BasicAdamW {
  using Traits = nn::parameter_traits<P>;

 public:
  using A = typename Traits::accum_type;  // master values, gradients and moments
  using List = std::vector<BasicParameterRef<P>>;
  static_assert(std::is_floating_point_v<A>, "AdamW: the parameters' accumulation type must be floating-point");

  // Optimizes `params` (each must appear once). `decays` picks the parameters that take weight
  // decay, by name: decay_all (the default, as torch.optim.AdamW with one group) or
  // decay_except_bias_and_norm (the Hugging Face convention), or any rule of the caller's.
  // Throws rlxf::Error naming the field for a config out of range: lr >= 0, 0 <= beta1 < 1,
  // 0 <= beta2 < 1, eps > 0, weight_decay >= 0, all finite.
  explicit BasicAdamW(List params, AdamWConfig cfg = {}, const DecayRule& decays = decay_all)
      : params_(std::move(params)), cfg_(cfg) {
    RLXF_REQUIRE(std::isfinite(cfg.lr) && cfg.lr >= 0, "AdamWConfig.lr must be finite and >= 0, got ",
                 cfg.lr);
    RLXF_REQUIRE(cfg.beta1 >= 0 && cfg.beta1 < 1, "AdamWConfig.beta1 must be in [0, 1), got ",
                 cfg.beta1);
    RLXF_REQUIRE(cfg.beta2 >= 0 && cfg.beta2 < 1, "AdamWConfig.beta2 must be in [0, 1), got ",
                 cfg.beta2);
    RLXF_REQUIRE(std::isfinite(cfg.eps) && cfg.eps > 0, "AdamWConfig.eps must be finite and > 0, got ",
                 cfg.eps);
    RLXF_REQUIRE(std::isfinite(cfg.weight_decay) && cfg.weight_decay >= 0,
                 "AdamWConfig.weight_decay must be finite and >= 0, got ", cfg.weight_decay);
    std::vector<const P*> seen;
    for (const auto& ref : params_) {
      RLXF_REQUIRE(ref.param != nullptr, "parameter '", ref.name, "' is null");
      RLXF_REQUIRE(ref.param->grad.size() == ref.param->size(), "parameter '", ref.name, "': grad has ",
                   ref.param->grad.size(), " elements, value has ", ref.param->size());
      seen.push_back(ref.param);
      decay_.push_back(decays(ref.name));
      auto& b = nn::backend_of(*ref.param);
      first_.push_back(nn::zeros_array<A>(b, ref.param->size()));
      second_.push_back(nn::zeros_array<A>(b, ref.param->size()));
    }
    std::sort(seen.begin(), seen.end());
    RLXF_REQUIRE(std::adjacent_find(seen.begin(), seen.end()) == seen.end(),
                 "a parameter appears twice in the list (it would be updated twice per step)");
    if constexpr (!host) pack_arena();
  }

  // One update of every parameter from its current gradient, with the current lr.
  void step() {
    for (std::size_t i = 0; i < params_.size(); ++i) check_sizes(i);
    ++steps_;
    const double t = static_cast<double>(steps_);
    AdamWStep s{.lr = cfg_.lr, .beta1 = cfg_.beta1, .beta2 = cfg_.beta2, .eps = cfg_.eps, .weight_decay = 0,
                .correction1 = 1 - std::pow(cfg_.beta1, t), .correction2 = 1 - std::pow(cfg_.beta2, t)};
    if constexpr (!host) {
      if (arena_intact()) {
        step_arena(s);
        return;
      }
    }
    for (std::size_t i = 0; i < params_.size(); ++i) {
      P& p = *params_[i].param;
      s.weight_decay = decay_[i] ? cfg_.weight_decay : 0.0;
      nn::backend_of(p).adamw(nn::master_data(p), p.grad.data(), first_[i].data(), second_[i].data(), p.size(), s);
      nn::refresh_working(p);
    }
  }
  // Sets the learning rate, then steps.
  void step(double lr) {
    set_lr(lr);
    step();
  }

  void zero_grad() {
    for (const auto& ref : params_) ref.param->zero_grad();
  }

  // Updates taken so far.
  std::size_t steps() const { return steps_; }
  double lr() const { return cfg_.lr; }
  void set_lr(double lr) {
    RLXF_REQUIRE(std::isfinite(lr) && lr >= 0, "lr must be finite and >= 0, got ", lr);
    cfg_.lr = lr;
  }
  // The configuration; its lr is the current one.
  const AdamWConfig& config() const { return cfg_; }

  const List& params() const { return params_; }
  // Whether parameter i (in list order) takes weight decay.
  bool decays(std::size_t i) const { return decay_.at(i); }
  // The moments of parameter i, flattened row-major: a view on the host, a host copy of a
  // device's.
  auto first_moment(std::size_t i) const { return host_view(first_.at(i)); }
  auto second_moment(std::size_t i) const { return host_view(second_.at(i)); }

  // A copy of the state, for a checkpoint.
  AdamWState<A> state() const {
    AdamWState<A> s{steps_, cfg_.lr, {}, {}};
    for (std::size_t i = 0; i < params_.size(); ++i) {
      const auto m = first_moment(i), v = second_moment(i);
      s.first_moment.emplace_back(m.begin(), m.end());
      s.second_moment.emplace_back(v.begin(), v.end());
    }
    return s;
  }
  // Resumes from `s`, taken from an AdamW over parameters of the same sizes in the same order.
  void restore(AdamWState<A> s) {
    RLXF_REQUIRE(s.first_moment.size() == params_.size() && s.second_moment.size() == params_.size(),
                 "state has ", s.first_moment.size(), " first and ", s.second_moment.size(),
                 " second moments for ", params_.size(), " parameters");
    for (std::size_t i = 0; i < params_.size(); ++i)
      RLXF_REQUIRE(s.first_moment[i].size() == first_[i].size() &&
                       s.second_moment[i].size() == second_[i].size(),
                   "parameter '", params_[i].name, "' has ", first_[i].size(),
                   " elements, the state's moments have ", s.first_moment[i].size(), " and ",
                   s.second_moment[i].size());
    set_lr(s.lr);
    steps_ = s.steps;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      assign(first_[i], s.first_moment[i]);
      assign(second_[i], s.second_moment[i]);
    }
  }

 private:
  using Backend = typename Traits::backend;
  using Moments = nn::Array<Backend, A>;
  static constexpr bool host = nn::host_memory<Backend>;

  // Moments keep their storage (an arena's slices on a device): values are copied in.
  static void assign(Moments& m, const std::vector<A>& values) {
    if constexpr (host)
      std::copy(values.begin(), values.end(), m.begin());
    else if (!values.empty())
      m.backend()->copy_to_device(std::span<const A>(values), m.data());
  }

  // Device parameters: decaying ones first, then the others, packed with their moments.
  void pack_arena() {
    if (params_.empty()) return;
    std::vector<P*> order;
    std::vector<std::size_t> index;  // list position of each parameter in arena order
    for (const bool decaying : {true, false})
      for (std::size_t i = 0; i < params_.size(); ++i)
        if (decay_[i] == decaying) {
          order.push_back(params_[i].param);
          index.push_back(i);
        }
    const nn::ArenaLayout layout = nn::pack(std::span<P* const>(order));
    Backend& be = nn::backend_of(*order.front());
    auto m = std::make_shared<typename Backend::template Buffer<A>>(be.template allocate<A>(layout.size));
    auto v = std::make_shared<typename Backend::template Buffer<A>>(be.template allocate<A>(layout.size));
    arena_offsets_.assign(params_.size(), 0);
    decay_end_ = 0;
    for (std::size_t k = 0; k < order.size(); ++k) {
      const std::size_t i = index[k], at = layout.offsets[k], n = order[k]->size();
      first_[i] = Moments(be, m, at, n);
      second_[i] = Moments(be, v, at, n);
      arena_offsets_[i] = at;
      if (decay_[i]) decay_end_ = (at + n + nn::arena_align - 1) / nn::arena_align * nn::arena_align;
    }
    arena_size_ = layout.size;
    arena_storage_ = order.front()->master.storage();
  }
  // Whether the parameters still lie where pack_arena put them.
  bool arena_intact() const {
    if (arena_storage_ == nullptr) return false;
    for (std::size_t i = 0; i < params_.size(); ++i)
      if (params_[i].param->master.storage() != arena_storage_ || params_[i].param->master.offset() != arena_offsets_[i])
        return false;
    return true;
  }
  // One step over the whole arena: one adamw (the decaying group first, decayed = where it
  // ends), then the working weights.
  void step_arena(AdamWStep s) {
    P& any = *params_.front().param;
    Backend& be = nn::backend_of(any);
    const std::size_t at = arena_offsets_.front();
    A* master = nn::master_data(any) - at;
    s.weight_decay = cfg_.weight_decay;
    s.decayed = decay_end_;
    be.adamw(master, any.grad.data() - at, first_.front().data() - at, second_.front().data() - at, arena_size_, s);
    be.template cast<A, typename Backend::value_type>(master, any.value.data() - at, arena_size_);
  }

  static auto host_view(const Moments& m) {
    if constexpr (nn::host_memory<typename Traits::backend>)
      return std::span<const A>(m);
    else
      return nn::to_host(m);
  }
  void check_sizes(std::size_t i) const {
    const auto& ref = params_[i];
    RLXF_REQUIRE(ref.param->size() == first_[i].size() && ref.param->grad.size() == first_[i].size(),
                 "parameter '", ref.name, "' changed size since the optimizer was built: value ",
                 ref.param->size(), ", grad ", ref.param->grad.size(), ", moments ", first_[i].size());
  }

  List params_;
  AdamWConfig cfg_;
  std::vector<bool> decay_;
  std::vector<Moments> first_, second_;
  std::size_t steps_ = 0;
  // The device arena (pack_arena): where each parameter starts, where the decaying group ends.
  std::vector<std::size_t> arena_offsets_;
  std::size_t decay_end_ = 0, arena_size_ = 0;
  const void* arena_storage_ = nullptr;
};

// AdamW over host parameters of type T (ParameterList<T>).
template <class T>
using AdamW = BasicAdamW<Parameter<T>>;

// AdamW over the parameters a list of named references holds (what a model's parameters()
// returns, on any backend).
template <class List>
using AdamWFor = BasicAdamW<std::remove_pointer_t<decltype(std::declval<List&>()[0].param)>>;

static_assert(rlxf::Optimizer<AdamW<float>> && rlxf::Optimizer<AdamW<double>>);

}  // namespace rlxf::optim
