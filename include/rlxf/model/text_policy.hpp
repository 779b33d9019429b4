#pragma once
// A policy that speaks text: a tokenizer and a policy (any rlxf::Policy: model::BasicPolicy<B>
// on any backend, a decoder + value head). It turns prompts and answers into SequenceBatch
// layouts (left-padded prompts, right-padded answers ending in EOS) and samples answers to
// prompts. model::TextPolicy is BasicTextPolicy<model::Policy<float>>.
//
//   model::TextPolicy policy(std::move(bpe), model::Policy<float>(cfg, rng));
//   model::Rollout r = policy.sample(prompts, {.max_new_tokens = 32, .temperature = 0.7}, rng);
//   // r.batch: prompt + answer tokens; r.logprobs: sampling log-probs; r.texts: the answers
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rlxf/concepts.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/model/generation.hpp"
#include "rlxf/model/policy.hpp"
#include "rlxf/tokenize/bpe.hpp"

namespace rlxf::model {

struct Rollout {
  SequenceBatch batch;             // prompts (width P) then sampled answers (width N)
  Tensor<float, 2> logprobs;       // (B, N) sampling log-probs under softmax(z / temperature)
  std::vector<std::string> texts;  // the answers, decoded, without EOS
  std::vector<bool> ended;         // whether each answer produced EOS
};

template <rlxf::Policy P>
class BasicTextPolicy {
 public:
  using PolicyType = P;

  BasicTextPolicy(tokenize::Bpe tokenizer, P policy, std::size_t max_prompt_tokens = 96)
      : tokenizer_(std::move(tokenizer)), policy_(std::move(policy)), max_prompt_tokens_(max_prompt_tokens) {
    RLXF_REQUIRE(tokenizer_.eos() && tokenizer_.pad(), "TextPolicy: the tokenizer needs EOS and PAD tokens");
    RLXF_REQUIRE(tokenizer_.vocab_size() <= policy_.vocab_size(), "TextPolicy: the tokenizer has ",
                 tokenizer_.vocab_size(), " tokens but the decoder's vocabulary is ", policy_.vocab_size());
    RLXF_REQUIRE(max_prompt_tokens_ > 0, "TextPolicy: max_prompt_tokens must be > 0");
  }

  const tokenize::Bpe& tokenizer() const { return tokenizer_; }
  P& policy() { return policy_; }
  const P& policy() const { return policy_; }
  std::int32_t eos() const { return *tokenizer_.eos(); }
  std::int32_t pad() const { return *tokenizer_.pad(); }

  // Left-padded prompt tokens (B, P) and mask; a prompt longer than max_prompt_tokens keeps its
  // last tokens (the question at its end matters most).
  std::pair<nn::Tokens, Mask> encode_prompts(std::span<const std::string> prompts) const {
    RLXF_REQUIRE(!prompts.empty(), "TextPolicy: no prompts");
    std::vector<std::vector<std::int32_t>> ids;
    std::size_t width = 1;
    for (const auto& p : prompts) {
      auto t = tokenizer_.encode(p);
      if (t.empty())
        t.push_back(*tokenizer_.bos());  // an empty prompt still needs a token to condition on
      if (t.size() > max_prompt_tokens_)
        t.erase(t.begin(), t.end() - static_cast<std::ptrdiff_t>(max_prompt_tokens_));
      width = std::max(width, t.size());
      ids.push_back(std::move(t));
    }
    nn::Tokens tokens = zeros<std::int32_t, 2>({prompts.size(), width});
    tokens.fill(pad());
    Mask mask = zeros<std::uint8_t, 2>({prompts.size(), width});
    for (std::size_t b = 0; b < ids.size(); ++b) {
      const std::size_t off = width - ids[b].size();
      for (std::size_t j = 0; j < ids[b].size(); ++j) {
        tokens(b, off + j) = ids[b][j];
        mask(b, off + j) = 1;
      }
    }
    return {std::move(tokens), std::move(mask)};
  }

  // Prompts and given answers (each followed by EOS, truncated to max_answer_tokens including
  // it) in the layout of a rollout: what SFT and DPO train on.
  SequenceBatch encode(std::span<const std::string> prompts, std::span<const std::string> answers,
                       std::size_t max_answer_tokens = 64) const {
    RLXF_REQUIRE(prompts.size() == answers.size(), "TextPolicy::encode: ", prompts.size(), " prompts but ",
                 answers.size(), " answers");
    RLXF_REQUIRE(max_answer_tokens >= 1, "TextPolicy::encode: max_answer_tokens must be >= 1");
    auto [ptokens, pmask] = encode_prompts(prompts);
    std::vector<std::vector<std::int32_t>> ids;
    std::size_t width = 1;
    for (const auto& a : answers) {
      auto t = tokenizer_.encode(a);
      if (t.size() > max_answer_tokens - 1)
        t.resize(max_answer_tokens - 1);
      t.push_back(eos());
      width = std::max(width, t.size());
      ids.push_back(std::move(t));
    }
    const std::size_t p = ptokens.shape()[1];
    SequenceBatch s{zeros<std::int32_t, 2>({prompts.size(), p + width}), zeros<std::uint8_t, 2>({prompts.size(), p + width}), p};
    s.tokens.fill(pad());
    xt::view(s.tokens, xt::all(), xt::range(0, p)) = ptokens;
    xt::view(s.mask, xt::all(), xt::range(0, p)) = pmask;
    for (std::size_t b = 0; b < ids.size(); ++b)
      for (std::size_t j = 0; j < ids[b].size(); ++j) {
        s.tokens(b, p + j) = ids[b][j];
        s.mask(b, p + j) = 1;
      }
    return s;
  }

  // Samples one answer per prompt (repeat a prompt for several samples).
  Rollout sample(std::span<const std::string> prompts, GenerationConfig cfg, Rng& rng) const {
    cfg.eos = eos();
    cfg.pad = pad();
    auto [tokens, mask] = encode_prompts(prompts);
    auto g = policy_.generate(tokens, mask, cfg, rng);
    Rollout r{SequenceBatch{std::move(g.tokens), std::move(g.mask), tokens.shape()[1]}, std::move(g.logprobs), {}, {}};
    for (std::size_t b = 0; b < prompts.size(); ++b) {
      std::vector<std::int32_t> answer;
      bool ended = false;
      for (std::size_t i = 0; i < g.response.shape()[1] && g.response_mask(b, i); ++i) {
        if (g.response(b, i) == eos()) {
          ended = true;
          break;
        }
        answer.push_back(g.response(b, i));
      }
      r.texts.push_back(tokenizer_.decode(answer));
      r.ended.push_back(ended);
    }
    return r;
  }

 private:
  tokenize::Bpe tokenizer_;
  P policy_;
  std::size_t max_prompt_tokens_;
};

using TextPolicy = BasicTextPolicy<Policy<float>>;

}  // namespace rlxf::model
