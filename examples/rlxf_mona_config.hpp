#pragma once
// The main job's configuration (examples/rlxf_mona.cpp): every key with its default, allowed
// range and meaning, read from JSON without coercion, validated as a whole before the job
// writes anything, and printed by --help. A header of its own so that the JSON-config fuzz
// target (tests/fuzz/fuzz_json.cpp) runs exactly this code.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "rlxf/core/error.hpp"
#include "rlxf/core/range.hpp"
#include "rlxf/core/text.hpp"
#include "rlxf/io/json.hpp"

namespace rlxf_mona {

using rlxf::Error;
using rlxf::Range;

// The policy's positions: a prompt (at most max_prompt_tokens, TextPolicy keeps its last
// tokens) and its answer (max_new_tokens) must fit.
constexpr std::size_t policy_max_positions = 256, max_prompt_tokens = 96;

struct Config {
  std::string data = std::string(RLXF_SOURCE_DIR) + "/data/mona_synthetic.csv";
  std::uint64_t seed = 0;
  std::size_t vocab = 4096;
  std::size_t policy_d_model = 96, policy_layers = 2, policy_heads = 4;
  std::size_t sft_epochs = 1;
  double sft_lr = 2e-3;
  std::size_t rm_d_model = 64, rm_layers = 2, rm_heads = 4;
  std::size_t rm_epochs = 4;
  double rm_lr = 2e-3;
  std::size_t steps = 60, prompts_per_step = 32, checkpoint_every = 5, eval_every = 10;
  double lr = 1e-4;
  std::size_t ppo_epochs = 4, minibatch_size = 16, max_new_tokens = 32;
  double temperature = 0.7;
  bool adaptive_kl = true;
  double kl_coef = 0.1, kl_target = 4.0, kl_horizon = 2000;
  std::size_t eval_prompts = 256, eval_during_training = 64;
};

// Every field: name, allowed range (nullopt: any value of its type) and what it does.
#define RLXF_CONFIG_FIELDS(X)                                                                                   \
  X(data, std::nullopt, "MONA-format CSV export (the shipped synthetic data by default)")                       \
  X(seed, std::nullopt, "seed of every random choice: splits, initialisation, sampling")                       \
  X(vocab, Range::closed(260, 65536), "BPE vocabulary size (256 bytes + 4 special tokens at least)")           \
  X(policy_d_model, Range::closed(8, 4096), "policy width; policy_heads must divide it")                        \
  X(policy_layers, Range::closed(1, 64), "policy transformer blocks")                                           \
  X(policy_heads, Range::closed(1, 64), "policy attention heads")                                               \
  X(sft_epochs, Range::closed(1, 1000), "supervised fine-tuning epochs over the training rows")                 \
  X(sft_lr, Range::above(0, 1), "SFT peak learning rate")                                                       \
  X(rm_d_model, Range::closed(8, 4096), "reward-model encoder width; rm_heads must divide it")                 \
  X(rm_layers, Range::closed(1, 64), "reward-model encoder blocks")                                             \
  X(rm_heads, Range::closed(1, 64), "reward-model attention heads")                                             \
  X(rm_epochs, Range::closed(1, 1000), "reward-model training epochs")                                          \
  X(rm_lr, Range::above(0, 1), "reward-model peak learning rate")                                               \
  X(steps, Range::closed(1, 1e6), "fine-tuning steps")                                                          \
  X(prompts_per_step, Range::closed(1, 4096), "answers sampled per fine-tuning step")                           \
  X(checkpoint_every, Range::closed(1, 1e6), "steps between checkpoints (and one at the end)")                  \
  X(eval_every, Range::closed(0, 1e6), "steps between held-out evaluations; 0 = only at the end")               \
  X(lr, Range::above(0, 1), "fine-tuning peak learning rate (decays linearly to 0)")                            \
  X(ppo_epochs, Range::closed(1, 100), "PPO epochs over each rollout batch")                                    \
  X(minibatch_size, Range::closed(1, 4096), "rows per update")                                                  \
  X(max_new_tokens, Range::closed(1, policy_max_positions - max_prompt_tokens),                                 \
    "answer length limit: prompts (<= 96 tokens) + answers fit the policy's 256 positions")                     \
  X(temperature, Range::above(0, 100), "sampling temperature of rollouts and evaluation")                       \
  X(adaptive_kl, std::nullopt, "PPO: adaptive KL coefficient (Ziegler) instead of a fixed one")                  \
  X(kl_coef, Range::closed(0, 1e3), "PPO: initial (adaptive) or fixed KL coefficient beta")                     \
  X(kl_target, Range::above(0, 1e6), "PPO: target KL (nats per answer) of the adaptive controller")             \
  X(kl_horizon, Range::above(0, 1e12), "PPO: horizon in episodes of the adaptive controller; > 0.2 x prompts_per_step") \
  X(eval_prompts, Range::closed(1, 1e5), "held-out prompts in the final evaluation")                            \
  X(eval_during_training, Range::closed(0, 1e5), "held-out prompts in the evaluations during fine-tuning; 0 = none")

inline nlohmann::json to_json(const Config& c) {
  nlohmann::json j;
#define X(name, range, doc) j[#name] = c.name;
  RLXF_CONFIG_FIELDS(X)
#undef X
  return j;
}

// A usage or configuration error: exit status 2.
struct UsageError : Error {
  using Error::Error;
};

template <class... Args>
[[noreturn]] void usage_error(const Args&... args) {
  throw UsageError(rlxf::detail::concat(args...));
}

// Every field against its range, then the rules between fields. Throws UsageError naming the
// field, its value and what is allowed.
inline void validate(const Config& c, std::string_view algorithm) {
  try {
#define X(name, range, doc)                                                                        \
  if constexpr (!std::is_same_v<decltype(c.name), std::string> && !std::is_same_v<decltype(c.name), bool>) { \
    const std::optional<Range> r = range;                                                          \
    if (r) rlxf::require_in("field '" #name "'", c.name, *r);                                                  \
  }
    RLXF_CONFIG_FIELDS(X)
#undef X
  } catch (const Error& e) {
    usage_error(e.what());
  }
  if (c.data.empty()) usage_error("field 'data' is empty: expected the path of a MONA-format CSV file");
  if (c.policy_d_model % c.policy_heads != 0)
    usage_error("field 'policy_heads' = ", c.policy_heads, " must divide 'policy_d_model' = ", c.policy_d_model);
  if (c.rm_d_model % c.rm_heads != 0)
    usage_error("field 'rm_heads' = ", c.rm_heads, " must divide 'rm_d_model' = ", c.rm_d_model);
  if (algorithm == "ppo" && c.adaptive_kl && !(c.kl_horizon > 0.2 * static_cast<double>(c.prompts_per_step)))
    usage_error("field 'kl_horizon' = ", c.kl_horizon, ": expected > 0.2 x 'prompts_per_step' = ",
                0.2 * static_cast<double>(c.prompts_per_step),
                " (a step of the adaptive KL controller could otherwise make beta negative)");
}

// The CUDA backend's attention kernels exist for some head dimensions only (`head_dims`,
// cuda::attention::shipped_head_dims): both models' d_model / heads must be one of them.
inline void validate_cuda_shapes(const Config& c, std::span<const int> head_dims) {
  std::string allowed;
  for (int d : head_dims) allowed += (allowed.empty() ? "" : ", ") + std::to_string(d);
  const auto check = [&](const char* width, std::size_t d_model, const char* heads, std::size_t n_heads) {
    const std::size_t head_dim = d_model / n_heads;
    if (std::find(head_dims.begin(), head_dims.end(), static_cast<int>(head_dim)) == head_dims.end())
      usage_error("field '", heads, "' = ", n_heads, " with '", width, "' = ", d_model, " gives attention heads of ",
                  head_dim, " dimensions; the CUDA backend's attention kernels take ", allowed,
                  " (e.g. '", width, "' = ", head_dims.front() * n_heads, ")");
  };
  check("policy_d_model", c.policy_d_model, "policy_heads", c.policy_heads);
  check("rm_d_model", c.rm_d_model, "rm_heads", c.rm_heads);
}

inline Config from_json(const nlohmann::json& j) {
  Config c;
  if (!j.is_object()) usage_error("expected a JSON object of configuration keys (see --help)");
  const nlohmann::json known = to_json(c);
  for (const auto& [key, value] : j.items())
    if (!known.contains(key)) usage_error("unknown key '", rlxf::printable(key), "' (see --help for the keys)");
  // A value of the wrong type (-1 or 2.7 for a count, a string for a number) is reported with
  // the field's own range.
#define X(name, range, doc)                                                                                      \
  if (j.contains(#name)) {                                                                                       \
    try {                                                                                                        \
      c.name = rlxf::io::json_as<decltype(c.name)>(j[#name], #name);                                                   \
    } catch (const Error& e) {                                                                                   \
      const std::optional<Range> r = range;                                                                      \
      if (!r) usage_error(e.what());                                                                             \
      const std::string allowed = r->describe();                                                                 \
      usage_error("field '" #name "' = ", rlxf::io::detail::json_excerpt(j[#name]), ": expected ",                    \
                  std::is_integral_v<decltype(c.name)> ? "an integer" : "a finite number",                       \
                  allowed[0] == '[' || allowed[0] == '(' ? " in " : " ", allowed);                               \
    }                                                                                                            \
  }
  RLXF_CONFIG_FIELDS(X)
#undef X
  return c;
}

inline std::string usage() {
  const Config d;
  const nlohmann::json defaults = to_json(d);
  std::string u =
      "usage: rlxf_mona [--config FILE.json] [--run DIR] [--algorithm ppo|dpo|rs|grpo|rloo]\n"
      "                 [--device cpu|cuda|cuda-emulator] [--help]\n"
      "\n"
      "The RLXF pipeline on a MONA export: tokenizer, SFT policy, reward model, fine-tuning, evaluation.\n"
      "\n"
      "  --config FILE   JSON object overriding any of the keys below (unknown keys are an error)\n"
      "  --run DIR       run folder, resumed where it stopped (default runs/rlxf_mona)\n"
      "  --algorithm A   ppo (default), dpo, rs (rejection sampling), grpo or rloo\n"
      "  --device D      cpu (default); cuda: a GPU (without a usable one it stops at once); cuda-emulator:\n"
      "                  the CUDA code path with its kernels run by the CPU emulator (slow; for checking)\n"
      "                  The CUDA backend's attention needs d_model / heads = 64 or 128 in both models.\n"
      "  --help, -h      this text\n"
      "\n"
      "Configuration keys (default; allowed values):\n";
#define X(name, range, doc)                                                                     \
  {                                                                                             \
    const std::optional<Range> r = range;                                                       \
    const std::string allowed = r ? r->describe()                                               \
                                  : std::is_same_v<decltype(d.name), bool>        ? "true or false" \
                                    : std::is_same_v<decltype(d.name), std::string> ? "a path"      \
                                                                                    : "[0, 2^64)";  \
    char line[512];                                                                             \
    std::snprintf(line, sizeof line, "  %-21s %-12s %-14s %s\n", #name,                          \
                  #name == std::string_view("data") ? "(shipped)" : defaults[#name].dump().c_str(), \
                  allowed.c_str(), doc);                                                        \
    u += line;                                                                                  \
  }
  RLXF_CONFIG_FIELDS(X)
#undef X
  u += "\nExit status: 0 done, 2 usage or configuration error, 1 any other error.\n";
  return u;
}

}  // namespace rlxf_mona
