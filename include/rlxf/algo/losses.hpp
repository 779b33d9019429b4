#pragma once
// All rlxf::algo losses (one header per algorithm): PPO policy and value losses, entropy,
// the DPO family, GRPO and RLOO. See docs/algorithms.md.
#include "rlxf/algo/dpo_loss.hpp"
#include "rlxf/algo/entropy.hpp"
#include "rlxf/algo/grpo_loss.hpp"
#include "rlxf/algo/ppo_loss.hpp"
#include "rlxf/algo/rloo_loss.hpp"
