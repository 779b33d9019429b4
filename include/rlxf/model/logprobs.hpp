#pragma once
// Per-token log-probabilities from logits, as PPO and DPO need them, without materialising a
// softmax copy of the logits: log p(y) = z_y / tau - logsumexp(z / tau).
#include <cstddef>
#include <cstdint>

#include "rlxf/core/backend.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/cpu/softmax.hpp"
#include "rlxf/nn/embedding.hpp"
#include "rlxf/nn/linear.hpp"

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

// What token_logprobs_backward needs.
template <class T>
struct LogprobCache {
  nn::Activation<T> scaled;  // logits / temperature; empty when temperature == 1 (logits used)
  Tensor<T, 1> lse;          // (B*T) log-sum-exp of each row of the scaled logits
  double temperature = 1.0;
};

// logits (B, T, V), targets (B, T) -> log-probs (B, T) of the targets under
// softmax(logits / temperature); positions whose target is ignore_target get 0.
template <class T>
Tensor<T, 2> token_logprobs(const nn::Activation<T>& logits, const nn::Tokens& targets, LogprobCache<T>& cache,
                            double temperature = 1.0) {
  const std::size_t b = logits.shape()[0], t = logits.shape()[1], v = logits.shape()[2];
  require_shape(targets, {b, t}, "token_logprobs targets");
  RLXF_REQUIRE(temperature > 0, "temperature must be positive, got ", temperature);
  cache.temperature = temperature;
  const T* z = logits.data();
  if (temperature != 1.0) {
    cache.scaled = logits / static_cast<T>(temperature);
    z = cache.scaled.data();
  } else {
    cache.scaled = nn::Activation<T>();
  }
  cache.lse = zeros<T, 1>({b * t});
  Tensor<T, 2> logp = zeros<T, 2>({b, t});
  cpu::cross_entropy_forward<T>(z, targets.data(), logp.data(), cache.lse.data(), b * t, v, ignore_target);
  logp = -logp;  // cross-entropy is -log p
  return logp;
}

// dlogits (B, T, V) += gradient of sum(dlogp * logp) w.r.t. the logits:
// dlogp (onehot(target) - softmax(logits / tau)) / tau, zero at ignored positions.
template <class T>
void token_logprobs_backward(const nn::Activation<T>& logits, const nn::Tokens& targets, const LogprobCache<T>& cache,
                             const Tensor<T, 2>& dlogp, nn::Activation<T>& dlogits) {
  const std::size_t b = logits.shape()[0], t = logits.shape()[1], v = logits.shape()[2];
  require_shape(dlogp, {b, t}, "token_logprobs_backward dlogp");
  require_shape(dlogits, {b, t, v}, "token_logprobs_backward dlogits");
  const T* z = cache.temperature != 1.0 ? cache.scaled.data() : logits.data();
  // d(-CE)/dz_scaled = onehot - softmax; the chain through z / tau divides by tau.
  Tensor<T, 1> dloss = zeros<T, 1>({b * t});
  for (std::size_t i = 0; i < b * t; ++i) dloss(i) = -dlogp.data()[i] / static_cast<T>(cache.temperature);
  cpu::cross_entropy_backward<T>(z, targets.data(), cache.lse.data(), dloss.data(), dlogits.data(), b * t, v,
                                 ignore_target);
}

}  // namespace rlxf::model
