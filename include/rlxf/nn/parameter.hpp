#pragma once
// A layer's trainable parameters, on its backend:
// - on a CPU backend, a host Parameter<V> (core/parameter.hpp): value and gradient in V, and
//   the optimizer updates the value itself;
// - on another backend, a DeviceParameter<B> in the backend's memory (mixed precision):
//   `value` the working weights in V (bf16 on a GPU), which the ops read; `master` the same
//   weights in A (f32), which the optimizer updates and whose rounding is `value`; `grad` in
//   A, which the backward ops accumulate into (a weight gradient never passes through bf16).
// The layers are written once against both through the overloads below; ParameterList-style
// lists of either are Params<B>.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/parameter.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/cpu/backend.hpp"
#include "rlxf/nn/storage.hpp"

namespace rlxf::nn {

template <class B>
struct DeviceParameter {
  using value_type = typename B::value_type;
  using accum_type = typename B::accum_type;

  DeviceArray<B, value_type> value;   // working weights: what the ops read
  DeviceArray<B, accum_type> master;  // the weights the optimizer updates
  DeviceArray<B, accum_type> grad;    // accumulated by backward
  std::vector<std::size_t> shape;

  // Empty (shape {0}), as an absent bias.
  DeviceParameter() : shape{0} {}
  // Zero values and gradient of `shape`.
  DeviceParameter(B& backend, std::vector<std::size_t> dims) : shape(std::move(dims)) {
    std::size_t n = 1;
    for (const std::size_t d : shape) n = checked_mul(n, d, "parameter shape");
    value = DeviceArray<B, value_type>(backend, n);
    master = DeviceArray<B, accum_type>(backend, n);
    grad = DeviceArray<B, accum_type>(backend, n);
  }

  std::size_t size() const { return master.size(); }
  void zero_grad() {
    if (!grad.empty()) grad.backend()->zero(grad.data(), grad.size());
  }
};

// A parameter of a layer on backend B, and a list of named references to them.
template <class B>
using Param = std::conditional_t<host_memory<B>, Parameter<typename B::value_type>, DeviceParameter<B>>;
template <class B>
using Params = std::vector<BasicParameterRef<Param<B>>>;

// The backend a parameter lives on (a CPU backend for a host Parameter) and the type of its
// master values and gradient, for code that takes parameters of any backend (optimizers,
// clipping, checkpoints).
template <class P>
struct parameter_traits;
template <class T>
struct parameter_traits<Parameter<T>> {
  using backend = cpu::Backend<T>;
  using accum_type = T;
};
template <class B>
struct parameter_traits<DeviceParameter<B>> {
  using backend = B;
  using accum_type = typename B::accum_type;
};
template <class T>
cpu::Backend<T>& backend_of(const Parameter<T>&) {
  static cpu::Backend<T> shared;  // stateless
  return shared;
}
template <class B>
B& backend_of(const DeviceParameter<B>& p) {
  RLXF_REQUIRE(p.master.backend() != nullptr, "an empty parameter has no backend");
  return *p.master.backend();
}

// A planned training step (nn::PlannedStep) on the backend of `params` (which must not be
// empty); a no-op for host parameters.
template <class P>
auto planned_step(const std::vector<BasicParameterRef<P>>& params, std::uint64_t key) {
  RLXF_REQUIRE(!params.empty(), "planned_step: no parameters");
  using B = std::remove_reference_t<decltype(backend_of(*params.front().param))>;
  return PlannedStep<B>(backend_of(*params.front().param), key);
}

// ---- parameter arenas (device parameters) ----
// Parameters moved into one buffer each of working values, master values and gradients, each
// parameter's slice starting at a multiple of arena_align elements (so vectorised kernels see
// aligned slices; the gaps hold zeros and stay zero under the update). An optimizer packs the
// parameters it updates (optim::BasicAdamW), so that the update, the cast into the working
// weights and the gradient norm run once over the whole arena. The layers keep reading their
// parameters through the same DeviceParameter objects, which now view the arena.
inline constexpr std::size_t arena_align = 64;

struct ArenaLayout {
  std::vector<std::size_t> offsets;  // of each parameter, in the order packed
  std::size_t size = 0;              // the arena's extent, a multiple of arena_align
};

// Moves `params` (in this order) into new arenas; their values and gradients are kept.
template <class B>
ArenaLayout pack(std::span<DeviceParameter<B>* const> params) {
  using V = typename B::value_type;
  using A = typename B::accum_type;
  ArenaLayout layout;
  for (const DeviceParameter<B>* p : params) {
    layout.offsets.push_back(layout.size);
    layout.size = (layout.size + p->size() + arena_align - 1) / arena_align * arena_align;
  }
  if (params.empty()) return layout;
  B& be = backend_of(*params[0]);
  auto value = std::make_shared<typename B::template Buffer<V>>(be.template allocate<V>(layout.size));
  auto master = std::make_shared<typename B::template Buffer<A>>(be.template allocate<A>(layout.size));
  auto grad = std::make_shared<typename B::template Buffer<A>>(be.template allocate<A>(layout.size));
  for (std::size_t i = 0; i < params.size(); ++i) {
    DeviceParameter<B>& p = *params[i];
    const std::size_t at = layout.offsets[i], n = p.size();
    RLXF_REQUIRE(&backend_of(p) == &be, "pack: the parameters live on different backends");
    be.copy(p.value.data(), value->data() + at, n);
    be.copy(p.master.data(), master->data() + at, n);
    be.copy(p.grad.data(), grad->data() + at, n);
    p.value = DeviceArray<B, V>(be, value, at, n);
    p.master = DeviceArray<B, A>(be, master, at, n);
    p.grad = DeviceArray<B, A>(be, grad, at, n);
  }
  return layout;
}

// When `params` are exactly one arena (slices of one gradient buffer that tile it, in any
// order): that buffer's gradients, which a norm or a scale can then take in one pass.
template <class B>
std::optional<std::span<typename B::accum_type>> arena_gradients(
    const std::vector<BasicParameterRef<DeviceParameter<B>>>& params) {
  if (params.empty()) return std::nullopt;
  const auto* storage = params[0].param->grad.storage();
  std::vector<std::pair<std::size_t, std::size_t>> slices;  // (offset, size)
  for (const auto& ref : params) {
    if (ref.param->grad.storage() != storage || storage == nullptr) return std::nullopt;
    slices.emplace_back(ref.param->grad.offset(), ref.param->size());
  }
  std::sort(slices.begin(), slices.end());
  std::size_t end = 0;
  for (const auto& [offset, size] : slices) {
    if (offset != end) return std::nullopt;
    end = (offset + size + arena_align - 1) / arena_align * arena_align;
  }
  if (end != params[0].param->grad.storage_size()) return std::nullopt;
  auto* base = params[0].param->grad.data() - params[0].param->grad.offset();
  return std::span<typename B::accum_type>(base, end);
}

// A zero parameter of `shape` on B.
template <class B>
Param<B> new_param(B& backend, std::vector<std::size_t> shape) {
  if constexpr (host_memory<B>) {
    (void)backend;
    return Param<B>(std::move(shape));
  } else {
    return Param<B>(backend, std::move(shape));
  }
}

// The parameter's shape.
template <class T>
std::vector<std::size_t> shape_of(const Parameter<T>& p) {
  return {p.value.shape().begin(), p.value.shape().end()};
}
template <class B>
std::vector<std::size_t> shape_of(const DeviceParameter<B>& p) {
  return p.shape;
}

// The values in the accumulation type: what the optimizer updates (and what a GEMM's bias
// epilogue reads).
template <class T>
T* master_data(Parameter<T>& p) {
  return p.value.data();
}
template <class T>
const T* master_data(const Parameter<T>& p) {
  return p.value.data();
}
template <class B>
typename B::accum_type* master_data(DeviceParameter<B>& p) {
  return p.master.data();
}
template <class B>
const typename B::accum_type* master_data(const DeviceParameter<B>& p) {
  return p.master.data();
}

// After the master values changed: rounds them into the working values (nothing to do on
// the host, where they are one array).
template <class T>
void refresh_working(Parameter<T>&) {}
template <class B>
void refresh_working(DeviceParameter<B>& p) {
  if (p.size() == 0) return;
  p.master.backend()->template cast<typename B::accum_type, typename B::value_type>(p.master.data(), p.value.data(),
                                                                                    p.size());
}

// Sets the values from host values (checkpoints, pretrained weights, tests).
template <class T>
void set_values(Parameter<T>& p, std::span<const T> values) {
  RLXF_REQUIRE(values.size() == p.size(), "set_values: ", values.size(), " values for a parameter of ", p.size());
  std::copy(values.begin(), values.end(), p.value.data());
}
template <class B>
void set_values(DeviceParameter<B>& p, std::span<const typename B::accum_type> values) {
  RLXF_REQUIRE(values.size() == p.size(), "set_values: ", values.size(), " values for a parameter of ", p.size());
  if (p.size() == 0) return;
  p.master.backend()->copy_to_device(values, p.master.data());
  refresh_working(p);
}

// The (master) values and the gradient, on the host.
template <class T>
std::vector<T> values_of(const Parameter<T>& p) {
  return {p.value.data(), p.value.data() + p.size()};
}
template <class B>
std::vector<typename B::accum_type> values_of(const DeviceParameter<B>& p) {
  return to_host(p.master);
}
template <class T>
std::vector<T> grads_of(const Parameter<T>& p) {
  return {p.grad.data(), p.grad.data() + p.grad.size()};
}
template <class B>
std::vector<typename B::accum_type> grads_of(const DeviceParameter<B>& p) {
  return to_host(p.grad);
}

// Values drawn N(0, std_dev^2) from rng: the same numbers on every backend of one
// accumulation type (drawn on the host, then copied).
template <class T>
void fill_normal(Parameter<T>& p, Rng& rng, double std_dev) {
  rng.fill_normal(std::span<T>(p.value.data(), p.size()), 0.0, std_dev);
}
template <class B>
void fill_normal(DeviceParameter<B>& p, Rng& rng, double std_dev) {
  std::vector<typename B::accum_type> host(p.size());
  rng.fill_normal(std::span<typename B::accum_type>(host), 0.0, std_dev);
  set_values(p, std::span<const typename B::accum_type>(host));
}
// Every value set to `v`.
template <class T>
void fill_constant(Parameter<T>& p, double v) {
  p.value.fill(static_cast<T>(v));
}
template <class B>
void fill_constant(DeviceParameter<B>& p, double v) {
  const std::vector<typename B::accum_type> host(p.size(), static_cast<typename B::accum_type>(v));
  set_values(p, std::span<const typename B::accum_type>(host));
}

}  // namespace rlxf::nn
