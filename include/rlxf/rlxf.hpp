#pragma once
// rlxf: reward-modelled LLM fine-tuning. The one supported include.
#include "rlxf/concepts.hpp"

#include "rlxf/core/dtype.hpp"
#include "rlxf/core/error.hpp"
#include "rlxf/core/parameter.hpp"
#include "rlxf/core/rng.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/core/threading.hpp"

#include "rlxf/cpu/activations.hpp"
#include "rlxf/cpu/attention.hpp"
#include "rlxf/cpu/gemm.hpp"
#include "rlxf/cpu/layernorm.hpp"
#include "rlxf/cpu/rmsnorm.hpp"
#include "rlxf/cpu/rope.hpp"
#include "rlxf/cpu/softmax.hpp"

#include "rlxf/data/csv.hpp"
#include "rlxf/data/mona.hpp"
#include "rlxf/data/mona_record.hpp"
#include "rlxf/data/oracle.hpp"
#include "rlxf/data/split.hpp"
#include "rlxf/data/synthetic.hpp"

#include "rlxf/io/safetensors.hpp"

#include "rlxf/nn/attention.hpp"
#include "rlxf/nn/embedding.hpp"
#include "rlxf/nn/linear.hpp"
#include "rlxf/nn/mlp.hpp"
#include "rlxf/nn/norm.hpp"
#include "rlxf/nn/transformer_block.hpp"

#include "rlxf/model/checkpoint.hpp"
#include "rlxf/model/decoder.hpp"
#include "rlxf/model/encoder.hpp"
#include "rlxf/model/generation.hpp"
#include "rlxf/model/heads.hpp"
#include "rlxf/model/hf_config.hpp"
#include "rlxf/model/hf_names.hpp"
#include "rlxf/model/logprobs.hpp"
#include "rlxf/model/sequence_classifier.hpp"

#include "rlxf/algo/advantages.hpp"
#include "rlxf/algo/aggregation.hpp"
#include "rlxf/algo/entropy.hpp"
#include "rlxf/algo/kl.hpp"
#include "rlxf/algo/kl_controller.hpp"
#include "rlxf/algo/losses.hpp"

#include "rlxf/optim/adamw.hpp"
#include "rlxf/optim/clip.hpp"
#include "rlxf/optim/schedule.hpp"

#include "rlxf/reward/calibration.hpp"
#include "rlxf/reward/classifier_training.hpp"
#include "rlxf/reward/losses.hpp"
#include "rlxf/reward/metrics.hpp"
#include "rlxf/reward/mona_reward_model.hpp"
#include "rlxf/reward/training_loop.hpp"

#include "rlxf/tokenize/bpe.hpp"
