#pragma once
// A stack of transformer blocks run in order, as the decoder and the encoder run theirs, with
// optional activation checkpointing: with it on, the forward keeps only each block's input
// (one (B, T, C) activation a block instead of everything its backward reads) and the
// backward runs each block's forward again before its backward. The gradients are the same
// bits (the recomputed forward is the same ops on the same inputs); a training step costs one
// more forward of the blocks.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "rlxf/core/error.hpp"
#include "rlxf/core/tensor.hpp"
#include "rlxf/nn/backend.hpp"
#include "rlxf/nn/storage.hpp"
#include "rlxf/nn/transformer_block.hpp"

namespace rlxf::nn {

template <class B>
struct BlockStackCache {
  std::vector<typename BasicTransformerBlock<B>::Cache> blocks;  // one a block, without checkpointing
  std::vector<Activation<B>> inputs;                             // with it: each block's input
  Tensor<std::uint8_t, 2> key_padding;  // with it: the padding mask, for the recomputation
  bool padded = false;

  // Bytes kept for the backward.
  std::size_t bytes() const {
    std::size_t n = held_bytes(key_padding);
    for (const auto& c : blocks) n += c.bytes();
    for (const auto& x : inputs) n += held_bytes(x);
    return n;
  }
};

// x through every block; fills `cache` for backward_blocks.
template <class B>
Activation<B> forward_blocks(const std::vector<BasicTransformerBlock<B>>& blocks, Activation<B> x,
                             const AttentionMask& mask, bool checkpointing, BlockStackCache<B>& cache) {
  cache.blocks.clear();
  cache.inputs.clear();
  cache.padded = checkpointing && mask.key_padding;
  cache.key_padding = cache.padded ? *mask.key_padding : Tensor<std::uint8_t, 2>();
  if (checkpointing) {
    for (const auto& block : blocks) {
      cache.inputs.push_back(x);
      typename BasicTransformerBlock<B>::Cache discarded;
      x = block.forward(x, mask, discarded);
    }
  } else {
    cache.blocks.resize(blocks.size());
    for (std::size_t l = 0; l < blocks.size(); ++l) x = blocks[l].forward(x, mask, cache.blocks[l]);
  }
  return x;
}

// The gradient at the output of the last block back to the input of the first, accumulating
// every block's parameter gradients. `positions` are the forward's (null when it had none).
template <class B>
Activation<B> backward_blocks(std::vector<BasicTransformerBlock<B>>& blocks, Activation<B> dx,
                              const Tensor<std::int32_t, 2>* positions, const BlockStackCache<B>& cache) {
  const bool recompute = cache.blocks.empty();
  RLXF_REQUIRE((recompute ? cache.inputs.size() : cache.blocks.size()) == blocks.size(),
               "backward: the cache holds no forward of these ", blocks.size(), " blocks");
  const AttentionMask mask{cache.padded ? &cache.key_padding : nullptr, positions};
  for (std::size_t l = blocks.size(); l-- > 0;) {
    if (recompute) {
      typename BasicTransformerBlock<B>::Cache block;
      blocks[l].forward(cache.inputs[l], mask, block);
      dx = blocks[l].backward(dx, block);
    } else {
      dx = blocks[l].backward(dx, cache.blocks[l]);
    }
  }
  return dx;
}

}  // namespace rlxf::nn
