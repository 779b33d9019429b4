#pragma once
// A generative policy for RL fine-tuning: a Decoder and a value head that share its trunk (the
// RLHF recipe's actor-critic), read over prompt + response sequences.
//
// Sequences are laid out as generation produces them (model/generation.hpp): left-padded
// prompts of width P, then N response tokens. Response token i is predicted by the logits at
// position P - 1 + i; its value (the critic's estimate of the return before it is generated)
// is read at the same position. So forward returns, per row, N log-probs and N values.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include "rlxf/core/error.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/concepts.hpp"
#include "rlxf/model/decoder.hpp"
#include "rlxf/model/generation.hpp"
#include "rlxf/model/heads.hpp"
#include "rlxf/model/logprobs.hpp"
#include "rlxf/nn/linear.hpp"
#include "rlxf/nn/parameter.hpp"
#include "rlxf/nn/storage.hpp"

namespace rlxf::model {

// Prompt + response token sequences: tokens, mask (B, P + N); responses start at column P.
struct SequenceBatch {
  nn::Tokens tokens;
  Mask mask;
  std::size_t prompt_width = 0;

  std::size_t rows() const { return tokens.shape()[0]; }
  std::size_t response_width() const { return tokens.shape()[1] - prompt_width; }
  // The rows listed, in that order (a minibatch).
  SequenceBatch select(std::span<const std::size_t> rows_wanted) const {
    const std::size_t len = tokens.shape()[1];
    SequenceBatch out{zeros<std::int32_t, 2>({rows_wanted.size(), len}),
                      zeros<std::uint8_t, 2>({rows_wanted.size(), len}), prompt_width};
    for (std::size_t k = 0; k < rows_wanted.size(); ++k) {
      RLXF_REQUIRE(rows_wanted[k] < rows(), "SequenceBatch::select: row ", rows_wanted[k], " of ", rows());
      xt::view(out.tokens, k) = xt::view(tokens, rows_wanted[k]);
      xt::view(out.mask, k) = xt::view(mask, rows_wanted[k]);
    }
    return out;
  }
  // (B, N): 1 where response token i is real.
  Mask response_mask() const {
    Mask m = zeros<std::uint8_t, 2>({rows(), response_width()});
    for (std::size_t b = 0; b < rows(); ++b)
      for (std::size_t i = 0; i < response_width(); ++i)
        m(b, i) = mask(b, prompt_width + i);
    return m;
  }
};

template <class T>
struct PolicyOutputs {
  Tensor<T, 2> logprobs;  // (B, N) log p(response token i) under softmax(z / temperature); 0 where masked
  Tensor<T, 2> values;    // (B, N) value before response token i; empty unless asked for
};

template <class B>
class BasicPolicy {
 public:
  using Backend = B;
  using A = typename B::accum_type;  // log-probs, values and their gradients (host tensors)
  using Act = nn::Activation<B>;
  using Outputs = PolicyOutputs<A>;
  using Tokens = nn::Tokens;
  using Mask = model::Mask;
  struct Cache {
    typename BasicDecoder<B>::Cache decoder;
    Act logits;                  // (B, P + N, V)
    nn::Tokens targets;          // (B, P + N): response tokens at their predicting position
    LogprobCache<B> logprob;
    typename nn::BasicLinear<B>::Cache value;
    std::size_t prompt_width = 0;
    bool with_values = false;

    // Bytes kept for the backward (the decoder's, the logits, the heads').
    std::size_t bytes() const {
      return decoder.bytes() + nn::held_bytes(logits, targets, logprob.lse) + value.bytes();
    }
  };

  // The value head starts at zero (the OpenAI recipe). Algorithms without a critic (SFT, DPO,
  // GRPO, RLOO, rejection sampling) leave it out of parameters() and never ask for values.
  BasicPolicy(const DecoderConfig& cfg, Rng& rng, nn::BackendRef<B> backend = {})
      : decoder(cfg, rng, backend), value(value_head<B>(cfg.d_model, rng, backend)) {}
  explicit BasicPolicy(BasicDecoder<B> d, Rng& rng)
      : decoder(std::move(d)), value(value_head<B>(decoder.config().d_model, rng, decoder.backend())) {}

  const DecoderConfig& config() const { return decoder.config(); }
  std::size_t vocab_size() const { return decoder.config().vocab_size; }

  PolicyOutputs<A> forward(const SequenceBatch& batch, double temperature, bool with_values, Cache& cache) const {
    RLXF_REQUIRE(batch.prompt_width <= batch.tokens.shape()[1], "Policy::forward: prompt width ", batch.prompt_width,
                 " exceeds the sequence length ", batch.tokens.shape()[1]);
    const std::size_t b = batch.rows(), p = batch.prompt_width, n = batch.response_width();
    RLXF_REQUIRE(p >= 1 && n >= 1, "Policy::forward: need a prompt and a response (prompt width ", p,
                 ", response width ", n, ")");
    require_shape(batch.mask, {b, p + n}, "Policy::forward mask");
    cache.prompt_width = p;
    cache.with_values = with_values;
    const Act& hidden = decoder.forward_hidden(batch.tokens, &batch.mask, cache.decoder);
    cache.logits = decoder.logits(hidden);
    cache.targets = zeros<std::int32_t, 2>({b, p + n});
    cache.targets.fill(ignore_target);
    for (std::size_t r = 0; r < b; ++r)
      for (std::size_t i = 0; i < n; ++i)
        if (batch.mask(r, p + i))
          cache.targets(r, p - 1 + i) = batch.tokens(r, p + i);
    const auto all = token_logprobs<B>(cache.logits, cache.targets, cache.logprob, temperature, decoder.backend());
    PolicyOutputs<A> out{zeros<A, 2>({b, n}), {}};
    for (std::size_t r = 0; r < b; ++r)
      for (std::size_t i = 0; i < n; ++i)
        out.logprobs(r, i) = all(r, p - 1 + i);
    if (with_values) {
      const Act v_act = value.forward(hidden, cache.value);  // (B, P + N, 1)
      const auto& v = nn::to_host(v_act);
      out.values = zeros<A, 2>({b, n});
      for (std::size_t r = 0; r < b; ++r)
        for (std::size_t i = 0; i < n; ++i)
          out.values(r, i) = batch.mask(r, p + i) ? static_cast<A>(v(r, p - 1 + i, 0)) : A(0);
    }
    return out;
  }

  // Accumulates the gradients of sum(dlogprobs * logprobs) + sum(dvalues * values) (dvalues may
  // be null; it must be given iff forward computed values).
  void backward(const Tensor<A, 2>& dlogprobs, const Tensor<A, 2>* dvalues, const Cache& cache) {
    const std::size_t b = cache.targets.shape()[0], len = cache.targets.shape()[1];
    const std::size_t p = cache.prompt_width, n = len - p;
    require_shape(dlogprobs, {b, n}, "Policy::backward dlogprobs");
    RLXF_REQUIRE((dvalues != nullptr) == cache.with_values,
                 "Policy::backward: dvalues must be given exactly when forward computed values");
    Tensor<A, 2> dall = zeros<A, 2>({b, len});
    for (std::size_t r = 0; r < b; ++r)
      for (std::size_t i = 0; i < n; ++i)
        dall(r, p - 1 + i) = dlogprobs(r, i);
    B& be = decoder.backend().get();
    Act dlogits = nn::zero_activation(be, {b, len, config().vocab_size});
    token_logprobs_backward<B>(cache.logits, cache.targets, cache.logprob, dall, dlogits, decoder.backend());
    Act dhidden = decoder.logits_backward(dlogits, cache.decoder);
    if (dvalues) {
      require_shape(*dvalues, {b, n}, "Policy::backward dvalues");
      Tensor<A, 3> dv = zeros<A, 3>({b, len, 1});
      for (std::size_t r = 0; r < b; ++r)
        for (std::size_t i = 0; i < n; ++i)
          if (cache.targets(r, p - 1 + i) != ignore_target)  // masked values are a constant 0
            dv(r, p - 1 + i, 0) = (*dvalues)(r, i);
      const Act dvalue_hidden = value.backward(nn::activation_from_host(be, dv), cache.value);
      be.add(dvalue_hidden.data(), dhidden.data(), dhidden.size());
    }
    decoder.backward_hidden(dhidden, cache.decoder);
  }

  // (B, N): the entropy of softmax(logits / temperature) at each response position of the
  // forward that filled `cache` (0 where masked), computed on the backend.
  Tensor<A, 2> entropies(const Cache& cache) const {
    const std::size_t b = cache.targets.shape()[0], len = cache.targets.shape()[1], p = cache.prompt_width,
                      n = len - p, v = config().vocab_size;
    B& be = decoder.backend().get();
    // Only the rows that predict response tokens, one run of n rows a sequence.
    const std::vector<std::int32_t> none(n, ignore_target);
    const auto targets = nn::to_backend(be, std::span<const std::int32_t>(none));
    auto logp = nn::zeros_array<A>(be, b * n), lse = nn::zeros_array<A>(be, b * n),
         entropy = nn::zeros_array<A>(be, b * n);
    for (std::size_t r = 0; r < b; ++r)
      be.token_logprobs(cache.logits.data() + (r * len + p - 1) * v, targets.data(), logp.data() + r * n,
                        lse.data() + r * n, entropy.data() + r * n, n, v, cache.logprob.temperature);
    const auto& host = nn::to_host(entropy);
    Tensor<A, 2> out = zeros<A, 2>({b, n});
    for (std::size_t r = 0; r < b; ++r)
      for (std::size_t i = 0; i < n; ++i)
        if (cache.targets(r, p - 1 + i) != ignore_target) out(r, i) = host[r * n + i];
    return out;
  }

  // Samples answers to left-padded prompts with the decoder's KV cache (model/generation.hpp).
  Generation<A> generate(const Tokens& prompts, const Mask& prompt_mask, const GenerationConfig& cfg, Rng& rng) const {
    return model::generate<B, A>(decoder, prompts, prompt_mask, cfg, rng);
  }

  // The decoder's parameters (HF names), then the value head's ("v_head.") when asked.
  nn::Params<B> parameters(bool with_value_head = true) {
    nn::Params<B> ps = decoder.parameters();
    if (with_value_head)
      value.collect(ps, "v_head.");
    return ps;
  }

  BasicDecoder<B> decoder;
  nn::BasicLinear<B> value;
};

// model::Policy<float>, Policy<double>, or Policy<B> for a backend B (nn/backend.hpp).
template <class X>
using Policy = BasicPolicy<nn::backend_for_t<X>>;

static_assert(rlxf::Policy<Policy<float>>, "model::Policy<float> must model rlxf::Policy");

// The scalar type of a policy's log-probs and values (float; double for Policy<double>).
template <rlxf::Policy P>
using logprob_t = typename std::remove_cvref_t<decltype(std::declval<const typename P::Outputs&>().logprobs)>::value_type;

}  // namespace rlxf::model
