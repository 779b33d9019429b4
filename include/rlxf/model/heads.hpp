#pragma once
// Heads that read a trunk's hidden state (B, T, C) or pooled state (B, C), as Linear layers
// with the initialisations the RLHF recipe prescribes. X is a backend, or float / double for
// the CPU (nn/backend.hpp).
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "rlxf/core/rng.hpp"
#include "rlxf/nn/linear.hpp"

namespace rlxf::model {

// PPO's value head on the policy's trunk: C -> 1, weight and bias zero (the OpenAI recipe),
// so the critic starts by predicting 0 everywhere.
template <class X>
nn::Linear<X> value_head(std::size_t d_model, Rng& rng, nn::BackendRef<nn::backend_for_t<X>> backend = {}) {
  return nn::Linear<X>(d_model, 1, true, rng, 0.0, backend);
}

// A scalar reward head: C -> 1, weight N(0, 1/(C+1)) i.e. std 1/sqrt(C+1), bias 0 (Ziegler et
// al. 2019 / OpenAI lm-human-preferences).
template <class X>
nn::Linear<X> scalar_reward_head(std::size_t d_model, Rng& rng, nn::BackendRef<nn::backend_for_t<X>> backend = {}) {
  return nn::Linear<X>(d_model, 1, true, rng, 1.0 / std::sqrt(static_cast<double>(d_model) + 1.0), backend);
}

// A classifier head: C -> n_classes, weight N(0, 0.02^2) (BERT), bias 0.
template <class X>
nn::Linear<X> classifier_head(std::size_t d_model, std::size_t n_classes, Rng& rng, double init_std = 0.02,
                              nn::BackendRef<nn::backend_for_t<X>> backend = {}) {
  return nn::Linear<X>(d_model, n_classes, true, rng, init_std, backend);
}

}  // namespace rlxf::model
