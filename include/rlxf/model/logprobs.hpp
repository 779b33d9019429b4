#pragma once
// Per-token log-probabilities from logits, as PPO and DPO need them, without materialising a
// softmax copy of the logits: log p(y) = z_y / tau - logsumexp(z / tau).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "rlxf/core/backend.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/nn/backend.hpp"
#include "rlxf/nn/embedding.hpp"
#include "rlxf/nn/linear.hpp"
#include "rlxf/nn/storage.hpp"

namespace rlxf::model {

// Target value that marks a position without a target (core/backend.hpp).
using rlxf::ignore_target;

// The causal-LM targets of a batch: targets(b, t) = ids(b, t + 1) where both t and t + 1 are
// real tokens, ignore_target elsewhere (the last column always). ids, mask (B, T); mask may be null.
inline nn::Tokens next_token_targets(const nn::Tokens& ids, const Tensor<std::uint8_t, 2>* mask) {
  const std::size_t b = ids.shape()[0], t = ids.shape()[1];
  nn::Tokens targets = zeros<std::int32_t, 2>({b, t});
  for (std::size_t i = 0; i < b; ++i)
    for (std::size_t j = 0; j < t; ++j) {
      const bool valid = j + 1 < t && (!mask || ((*mask)(i, j) && (*mask)(i, j + 1)));
      targets(i, j) = valid ? ids(i, j + 1) : ignore_target;
    }
  return targets;
}

// What token_logprobs_backward needs. X is a backend, or float / double for the CPU.
template <class X>
struct LogprobCache {
  using Backend = nn::backend_for_t<X>;
  nn::Array<Backend, typename Backend::accum_type> lse;  // (B*T) log-sum-exp of each row of logits / temperature
  double temperature = 1.0;
};

// logits (B, T, V), targets (B, T) -> log-probs (B, T) of the targets under
// softmax(logits / temperature); positions whose target is ignore_target get 0. Computed by
// the backend's token_logprobs, without a scaled copy of the logits.
template <class X>
Tensor<typename nn::backend_for_t<X>::accum_type, 2> token_logprobs(const nn::Activation<X>& logits,
                                                                  const nn::Tokens& targets, LogprobCache<X>& cache,
                                                                  double temperature = 1.0,
                                                                  nn::BackendRef<nn::backend_for_t<X>> backend = {}) {
  using A = typename nn::backend_for_t<X>::accum_type;
  const std::size_t b = logits.shape()[0], t = logits.shape()[1], v = logits.shape()[2];
  require_shape(targets, {b, t}, "token_logprobs targets");
  RLXF_REQUIRE(temperature > 0, "temperature must be positive, got ", temperature);
  auto& be = backend.get();
  cache.temperature = temperature;
  cache.lse = nn::zeros_array<A>(be, b * t);
  Tensor<A, 2> logp = zeros<A, 2>({b, t});
  const auto rows = nn::on_backend(be, flat(targets));
  if constexpr (nn::host_memory<nn::backend_for_t<X>>) {
    be.token_logprobs(logits.data(), rows.data(), logp.data(), cache.lse.data(), nullptr, b * t, v, temperature);
  } else {
    auto out = nn::zeros_array<A>(be, b * t);
    be.token_logprobs(logits.data(), rows.data(), out.data(), cache.lse.data(), nullptr, b * t, v, temperature);
    const std::vector<A> host = nn::to_host(out);
    std::copy(host.begin(), host.end(), logp.data());
  }
  return logp;
}

// dlogits (B, T, V) += gradient of sum(dlogp * logp) w.r.t. the logits:
// dlogp (onehot(target) - softmax(logits / tau)) / tau, zero at ignored positions.
template <class X>
void token_logprobs_backward(const nn::Activation<X>& logits, const nn::Tokens& targets, const LogprobCache<X>& cache,
                             const Tensor<typename nn::backend_for_t<X>::accum_type, 2>& dlogp,
                             nn::Activation<X>& dlogits, nn::BackendRef<nn::backend_for_t<X>> backend = {}) {
  const std::size_t b = logits.shape()[0], t = logits.shape()[1], v = logits.shape()[2];
  require_shape(dlogp, {b, t}, "token_logprobs_backward dlogp");
  require_shape(dlogits, {b, t, v}, "token_logprobs_backward dlogits");
  auto& be = backend.get();
  const auto rows = nn::on_backend(be, flat(targets));
  const auto d = nn::on_backend(be, flat(dlogp));
  be.token_logprobs_backward(logits.data(), rows.data(), cache.lse.data(), d.data(), dlogits.data(), b * t, v,
                             cache.temperature);
}

}  // namespace rlxf::model
