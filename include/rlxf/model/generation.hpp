#pragma once
// Sampling from a Decoder with a KV cache: greedy, temperature, top-k, top-p, stop at EOS,
// batched prompts of different lengths (LEFT-padded: every prompt ends in the last column,
// so all rows generate in step).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <optional>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include "rlxf/core/range.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/model/decoder.hpp"

namespace rlxf::model {

struct GenerationConfig {
  std::size_t max_new_tokens = 32;
  bool greedy = false;                 // argmax instead of sampling
  double temperature = 1.0;            // logits are divided by it before anything else
  std::size_t top_k = 0;               // keep the k most likely tokens; 0 = off
  double top_p = 1.0;                  // keep the smallest set with probability >= top_p; 1 = off
  std::optional<std::int32_t> eos = std::nullopt;  // a row stops after producing it
  std::int32_t pad = 0;                // written after a row has stopped
};

// Throws unless every field of `cfg` is in range, naming the field, its value and the range.
inline void validate(const GenerationConfig& cfg) {
  require_in("GenerationConfig.max_new_tokens", cfg.max_new_tokens, Range::closed(1, 1 << 20));
  require_in("GenerationConfig.temperature", cfg.temperature, Range::above(0, 100));
  require_in("GenerationConfig.top_p", cfg.top_p, Range::above(0, 1));
  require_in("GenerationConfig.pad", cfg.pad, Range::at_least(0));
  if (cfg.eos) require_in("GenerationConfig.eos", *cfg.eos, Range::at_least(0));
}

template <class T>
struct Generation {
  nn::Tokens tokens;         // (B, P + N): the left-padded prompts, then the generated tokens
  Mask mask;                 // (B, P + N): 1 for prompt tokens and generated tokens up to EOS
  nn::Tokens response;       // (B, N): generated tokens, `pad` after a row stopped
  Mask response_mask;        // (B, N)
  Tensor<T, 2> logprobs;     // (B, N): log p of each generated token under softmax(z / temperature),
                             // the full distribution (what PPO's ratio uses), 0 where masked
};

namespace detail {
// Picks a token from one row of logits z (V) per the config; returns it and its log-prob
// under softmax(z / temperature).
template <class T>
std::pair<std::int32_t, double> pick_token(const T* z, std::size_t v, const GenerationConfig& cfg, Rng& rng) {
  std::vector<double> s(v);
  for (std::size_t i = 0; i < v; ++i) s[i] = as_double(z[i]) / cfg.temperature;
  const double m = *std::max_element(s.begin(), s.end());
  double sum = 0;
  for (double x : s) sum += std::exp(x - m);
  const double lse = m + std::log(sum);
  std::size_t pick = 0;
  if (cfg.greedy) {
    pick = static_cast<std::size_t>(std::max_element(s.begin(), s.end()) - s.begin());
  } else {
    // Candidates by descending scaled logit (ties by index), cut by top-k, then top-p.
    std::vector<std::size_t> order(v);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return s[a] > s[b]; });
    std::size_t keep = cfg.top_k ? std::min(cfg.top_k, v) : v;
    if (cfg.top_p < 1.0) {
      // Renormalised over the top-k set, as the usual order (temperature, top-k, top-p) does.
      double kept_mass = 0;
      for (std::size_t i = 0; i < keep; ++i) kept_mass += std::exp(s[order[i]] - lse);
      double cum = 0;
      std::size_t n = 0;
      while (n < keep) {
        cum += std::exp(s[order[n]] - lse) / kept_mass;
        ++n;
        if (cum >= cfg.top_p) break;
      }
      keep = n;
    }
    double mass = 0;
    for (std::size_t i = 0; i < keep; ++i) mass += std::exp(s[order[i]] - m);
    double u = static_cast<double>(rng.next_uniform()) * mass;
    pick = order[keep - 1];
    for (std::size_t i = 0; i < keep; ++i) {
      u -= std::exp(s[order[i]] - m);
      if (u < 0) {
        pick = order[i];
        break;
      }
    }
  }
  return {static_cast<std::int32_t>(pick), s[pick] - lse};
}
}  // namespace detail

// Generates up to cfg.max_new_tokens after each left-padded prompt (prompts, prompt_mask:
// (B, P)). Reproducible from `rng`'s state; draws one uniform per sampled token.
template <class B, class T = typename B::accum_type>
Generation<T> generate(const BasicDecoder<B>& model, const nn::Tokens& prompts, const Mask& prompt_mask,
                       const GenerationConfig& cfg, Rng& rng) {
  const std::size_t b = prompts.shape()[0], p = prompts.shape()[1], n = cfg.max_new_tokens;
  const std::size_t v = model.config().vocab_size;
  require_shape(prompt_mask, {b, p}, "generate prompt_mask");
  validate(cfg);
  // The token budget: every position of prompt and answer must exist in the model.
  const std::size_t max_positions = model.config().max_positions;
  if (n > max_positions || p > max_positions - n)
    fail("generate: prompts of ", p, " tokens + max_new_tokens ", n, " exceed the model's max_positions (",
         max_positions, ")");
  if (cfg.eos) require_in("GenerationConfig.eos", *cfg.eos, Range::closed(0, static_cast<double>(v) - 1));
  require_in("GenerationConfig.pad", cfg.pad, Range::closed(0, static_cast<double>(v) - 1));
  for (std::size_t i = 0; i < b; ++i)
    RLXF_REQUIRE(prompt_mask(i, p - 1) == 1, "prompt ", i, " is not left-padded (its last column is padding)");

  Generation<T> g;
  g.response = zeros<std::int32_t, 2>({b, n});
  g.response_mask = zeros<std::uint8_t, 2>({b, n});
  g.logprobs = zeros<T, 2>({b, n});
  KvCache<B> kv(model.config(), b, p + n, model.backend().get());
  for (std::size_t i = 0; i < b; ++i)
    for (std::size_t j = 0; j < p; ++j) kv.mask[i * kv.capacity + j] = prompt_mask(i, j);
  Tensor<std::int32_t, 2> positions = positions_from_mask(&prompt_mask, b, p);
  std::vector<std::int32_t> next_pos(b);
  for (std::size_t i = 0; i < b; ++i) next_pos[i] = positions(i, p - 1) + 1;

  nn::Activation<B> logits = model.forward_cached(prompts, positions, kv);  // prefill
  std::size_t last = p - 1;  // column of logits that predicts the next token
  std::vector<bool> done(b, false);
  for (std::size_t step = 0; step < n; ++step) {
    nn::Tokens next = zeros<std::int32_t, 2>({b, 1});
    const auto& z = nn::to_host(logits);  // the logits themselves on a CPU backend
    bool all_done = true;
    for (std::size_t i = 0; i < b; ++i) {
      if (done[i]) {
        next(i, 0) = cfg.pad;
        g.response(i, step) = cfg.pad;
        continue;
      }
      const auto [tok, lp] = detail::pick_token(&z(i, last, 0), v, cfg, rng);
      next(i, 0) = tok;
      g.response(i, step) = tok;
      g.response_mask(i, step) = 1;
      g.logprobs(i, step) = static_cast<T>(lp);
      kv.mask[i * kv.capacity + p + step] = 1;
      if (cfg.eos && tok == *cfg.eos) done[i] = true;
      all_done = all_done && done[i];
    }
    if (all_done || step + 1 == n) {
      g.response = xt::view(g.response, xt::all(), xt::range(0, step + 1));
      g.response_mask = xt::view(g.response_mask, xt::all(), xt::range(0, step + 1));
      g.logprobs = xt::view(g.logprobs, xt::all(), xt::range(0, step + 1));
      break;
    }
    Tensor<std::int32_t, 2> pos = zeros<std::int32_t, 2>({b, 1});
    for (std::size_t i = 0; i < b; ++i) pos(i, 0) = next_pos[i]++;
    logits = model.forward_cached(next, pos, kv);
    last = 0;
  }
  g.tokens = xt::concatenate(xt::xtuple(prompts, g.response), 1);
  g.mask = xt::concatenate(xt::xtuple(prompt_mask, g.response_mask), 1);
  return g;
}

}  // namespace rlxf::model
