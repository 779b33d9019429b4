#pragma once
// How a per-token loss l_{b,t} over (B, L) with a mask becomes one number. Every token loss of
// rlxf::algo is written as L = sum_{b,t} w_{b,t} l_{b,t}, so dL/dx_{b,t} = w_{b,t} dl/dx_{b,t};
// token_weights returns the w.
//   token_mean      w = m / max(sum m, 1)                 TRL masked_mean (PPO), GRPO "dapo"
//                                                         / "bnpo" on one process
//   sequence_mean   w = m / (B max(sum_t m_{b,t}, 1))     GRPO "grpo": mean of per-sequence means
//   fixed_length    w = m / (B max_length)                GRPO "dr_grpo" (Dr. GRPO)
// (m = mask; the max(., 1) is TRL's clamp(min=1): an all-pad row adds 0, not NaN.)
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "rlxf/core/error.hpp"

namespace rlxf::algo {

enum class LossAggregation { token_mean, sequence_mean, fixed_length };

// mask (B, L); max_length is used by fixed_length only (0 means L; TRL uses
// max_completion_length). Returns w (B, L).
inline std::vector<double> token_weights(std::span<const std::uint8_t> mask, std::size_t B, std::size_t L,
                                         LossAggregation agg, std::size_t max_length = 0) {
  RLXF_REQUIRE(mask.size() == B * L, "mask has ", mask.size(), " entries, expected (B, L) = ", B * L);
  std::vector<double> w(B * L, 0.0);
  switch (agg) {
    case LossAggregation::token_mean: {
      std::size_t n = 0;
      for (auto m : mask) n += m ? 1 : 0;
      const double inv = 1.0 / static_cast<double>(n > 0 ? n : 1);
      for (std::size_t i = 0; i < B * L; ++i) w[i] = mask[i] ? inv : 0.0;
      break;
    }
    case LossAggregation::sequence_mean:
      for (std::size_t b = 0; b < B; ++b) {
        std::size_t n = 0;
        for (std::size_t t = 0; t < L; ++t) n += mask[b * L + t] ? 1 : 0;
        const double inv = 1.0 / (static_cast<double>(B) * static_cast<double>(n > 0 ? n : 1));
        for (std::size_t t = 0; t < L; ++t) w[b * L + t] = mask[b * L + t] ? inv : 0.0;
      }
      break;
    case LossAggregation::fixed_length: {
      const std::size_t len = max_length > 0 ? max_length : L;
      RLXF_REQUIRE(len >= L, "max_length = ", max_length, " is shorter than the sequences (L = ", L, ")");
      const double inv = 1.0 / (static_cast<double>(B) * static_cast<double>(len));
      for (std::size_t i = 0; i < B * L; ++i) w[i] = mask[i] ? inv : 0.0;
      break;
    }
  }
  return w;
}

}  // namespace rlxf::algo
